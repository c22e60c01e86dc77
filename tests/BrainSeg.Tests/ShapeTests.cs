using BrainSeg.Engine;
using NUnit.Framework;

namespace BrainSeg.Tests;

public class ShapeTests
{
    [Test]
    public void NumelIsTheProductOfDimensions() => Assert.That(new Shape(2, 3, 4, 5).Numel, Is.EqualTo(120));

    [Test]
    public void NegativeDimensionIsRejected() => Assert.Throws<ArgumentException>(() => new Shape(2, -1));

    [Test]
    public void PhiloxMatchesTheRandom123KnownAnswer()
    {
        // Known-answer test of Philox4x32-10 from the Random123 distribution (kat_vectors):
        // counter = 0, key = 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
        var (a, b, c, d) = Philox.Block(0, 0);
        Assert.That(new[] { a, b, c, d }, Is.EqualTo(new uint[] { 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 }));
    }
}
