namespace Parity.Running.Tests;

public sealed class LanesTests
{
    [Test]
    public void AnItemStartsOnlyAfterTheItemsItWaitsForWhileOthersRunBesideThem()
    {
        // Item 0 holds its lane until item 1 has started (so 1 ran beside it); items 2 and 3 wait for 0, item 3 for 1 too.
        var started = new System.Collections.Concurrent.ConcurrentDictionary<int, bool[]>();
        var finished = new bool[4];
        using var oneStarted = new ManualResetEventSlim();
        Lanes.Run([0, 1, 2, 3], jobs: 3, exclusive: _ => false, body: i =>
        {
            lock (finished) started[i] = (bool[])finished.Clone();
            if (i == 1) oneStarted.Set();
            if (i == 0) Assert.That(oneStarted.Wait(TimeSpan.FromSeconds(20)), Is.True, "item 1 never started beside item 0");
            lock (finished) finished[i] = true;
        }, after: i => i switch { 2 => [0], 3 => [0, 1], _ => [] });

        Assert.Multiple(() =>
        {
            Assert.That(started[2][0], Is.True, "item 2 started before item 0 finished");
            Assert.That(started[3][0] && started[3][1], Is.True, "item 3 started before items 0 and 1 finished");
            Assert.That(finished, Is.All.True);
        });
    }

    [Test]
    public void WithOneLaneItemsRunInTheirOrderAndAFailedPrerequisiteStillLetsTheRestRun()
    {
        var order = new List<int>();
        var e = Assert.Throws<InvalidOperationException>(() => Lanes.Run([0, 1, 2], jobs: 1, exclusive: _ => false, body: i =>
        {
            order.Add(i);
            if (i == 0) throw new InvalidOperationException("item 0 failed");
        }, after: i => i == 2 ? [0] : []));
        Assert.That(e!.Message, Is.EqualTo("item 0 failed"));
        Assert.That(order, Is.EqualTo(new[] { 0, 1, 2 }));
    }

    [Test]
    public void AnItemMayNotWaitForItselfOrALaterItem()
    {
        var e = Assert.Throws<ArgumentException>(() => Lanes.Run([0, 1], jobs: 2, exclusive: _ => false, body: _ => { }, after: i => i == 0 ? [1] : []));
        Assert.That(e!.Message, Does.Contain("item 0 waits for item 1"));
        Assert.Throws<ArgumentException>(() => Lanes.Run([0, 1], jobs: 2, exclusive: _ => false, body: _ => { }, after: i => i == 1 ? [1] : []));
    }
}
