using BrainSeg.Engine.Cpu;
using NUnit.Framework;

namespace BrainSeg.Tests.Cpu;

/// <summary>The CPU backend's fork-join team: every item once, failures passed on, nested and concurrent loops safe.</summary>
public class WorkerTeamTests
{
    private static readonly WorkerTeam Team = WorkerTeam.Of(3);

    [Test]
    public void EveryItemRunsExactlyOnceAcrossManyBackToBackLoops()
    {
        // Short loops back to back, with idle gaps now and then so that workers also fall asleep and wake.
        for (var round = 0; round < 2000; round++)
        {
            var count = 1 + round % 37;
            var hits = new int[count];
            Team.For(count, i => Interlocked.Increment(ref hits[i]));
            Assert.That(hits, Is.All.EqualTo(1), $"round {round}");
            if (round % 500 == 499) Thread.Sleep(5);
        }
    }

    [Test]
    public void AFailureReachesTheCallerWithItsOwnType()
    {
        var e = Assert.Throws<ArgumentException>(() => Team.For(16, i =>
        {
            if (i == 11) throw new ArgumentException("item 11");
        }));
        Assert.That(e!.Message, Is.EqualTo("item 11"));
        // The team is free again afterwards.
        var sum = 0;
        Team.For(10, i => Interlocked.Add(ref sum, i));
        Assert.That(sum, Is.EqualTo(45));
    }

    [Test]
    public void NestedAndConcurrentLoopsComplete()
    {
        var total = 0;
        // Two threads start loops at once (one runs alone while the other holds the team); loops nest inside.
        Parallel.For(0, 2, _ =>
        {
            for (var r = 0; r < 200; r++)
                Team.For(4, i => Team.For(5, j => Interlocked.Increment(ref total)));
        });
        Assert.That(total, Is.EqualTo(2 * 200 * 4 * 5));
    }
}
