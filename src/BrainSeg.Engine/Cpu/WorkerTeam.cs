using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace BrainSeg.Engine.Cpu;

/// <summary>
/// The fork-join team behind the CPU backend's parallel loops: the calling thread plus Threads − 1 long-lived
/// workers, who spin for a while after each loop before they sleep. A training step runs a few hundred short
/// loops back to back; waking a sleeping thread for each (and, on a virtual machine, its idle virtual CPU) cost
/// more than some loops themselves. An OpenMP runtime keeps its threads spinning in the same way.
/// </summary>
internal sealed class WorkerTeam
{
    /// <summary>How long an idle worker spins before it sleeps: longer than the host work between two ops.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs

    private static readonly ConcurrentDictionary<int, WorkerTeam> Teams = new();

    [ThreadStatic] private static bool t_inLoop;

    private readonly ManualResetEventSlim[] _wake;
    private int _busy;
    private long _generation;
    private Loop? _current;

    /// <summary>One parallel loop: its own item counter, so a worker that arrives late finds it finished, never the next one's items.</summary>
    private sealed class Loop(Action<int> body, int count)
    {
        private int _next, _done;
        private ExceptionDispatchInfo? _failure;

        public bool Finished => Volatile.Read(ref _done) == count;

        public void Run()
        {
            t_inLoop = true;
            try
            {
                for (int i; (i = Interlocked.Increment(ref _next) - 1) < count;)
                {
                    try { body(i); }
                    catch (Exception e) { Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(e), null); }
                    Interlocked.Increment(ref _done);
                }
            }
            finally { t_inLoop = false; }
        }

        public void ThrowIfFailed() => _failure?.Throw();
    }

    /// <summary>The team of <paramref name="threads"/> (shared by every backend of that size).</summary>
    public static WorkerTeam Of(int threads) => Teams.GetOrAdd(threads, n => new WorkerTeam(n));

    private WorkerTeam(int threads)
    {
        _wake = new ManualResetEventSlim[threads - 1];
        for (var w = 0; w < _wake.Length; w++)
        {
            var wake = _wake[w] = new ManualResetEventSlim(false);
            new Thread(() => Work(wake)) { IsBackground = true, Name = $"brainseg cpu worker {w + 1}/{threads - 1}" }.Start();
        }
    }

    /// <summary>
    /// body(i) for i in [0, count), spread over the team; returns when all are done and rethrows the first failure.
    /// A loop started inside another, or while another thread's loop holds the team, runs on its caller alone.
    /// </summary>
    public void For(int count, Action<int> body)
    {
        if (_wake.Length == 0 || count <= 1 || t_inLoop || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (var i = 0; i < count; i++) body(i);
            return;
        }
        var loop = new Loop(body, count);
        try
        {
            Volatile.Write(ref _current, loop);
            Interlocked.Increment(ref _generation);
            foreach (var wake in _wake) wake.Set();
            loop.Run();
            // Items a worker has taken are being run: wait for them (the caller ran the rest itself).
            var spin = new SpinWait();
            while (!loop.Finished) spin.SpinOnce(sleep1Threshold: -1);
            loop.ThrowIfFailed();
        }
        finally
        {
            Volatile.Write(ref _current, null);
            Volatile.Write(ref _busy, 0);
        }
    }

    private void Work(ManualResetEventSlim wake)
    {
        long seen = 0;
        while (true)
        {
            long generation, idleSince = Stopwatch.GetTimestamp();
            while ((generation = Volatile.Read(ref _generation)) == seen)
            {
                if (Stopwatch.GetTimestamp() - idleSince < SpinTicks)
                {
                    Thread.SpinWait(20);
                    continue;
                }
                // Sleep; the caller sets the event after it bumps the generation, so checking again after Reset
                // cannot miss a loop.
                wake.Reset();
                if (Volatile.Read(ref _generation) == seen) wake.Wait();
                idleSince = Stopwatch.GetTimestamp();
            }
            seen = generation;
            Volatile.Read(ref _current)?.Run();
        }
    }
}
