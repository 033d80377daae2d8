using System.Runtime.ExceptionServices;

namespace Parity.Running;

/// <summary>
/// Runs independent items at most a given number at a time (the run's <c>--jobs</c>), each result in its item's place, so
/// what comes out does not depend on which item finished first. The first failure is rethrown as itself, not wrapped.
/// </summary>
public static class Lanes
{
    /// <summary>The default number of lanes: <c>PARITY_JOBS</c> when it holds a whole number of 1 or more, else one per core.</summary>
    public static int Default =>
        int.TryParse(Environment.GetEnvironmentVariable("PARITY_JOBS"), out int jobs) && jobs >= 1 ? jobs : Environment.ProcessorCount;

    /// <summary><paramref name="body"/> of each item (with its index), at most <paramref name="jobs"/> at a time; one after another when 1.</summary>
    public static TResult[] Map<TItem, TResult>(IReadOnlyList<TItem> items, int jobs, Func<TItem, int, TResult> body)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(body);
        var results = new TResult[items.Count];
        if (jobs <= 1 || items.Count <= 1)
        {
            for (int i = 0; i < items.Count; i++) results[i] = body(items[i], i);
            return results;
        }
        try
        {
            Parallel.For(0, items.Count, new ParallelOptions { MaxDegreeOfParallelism = jobs }, i => results[i] = body(items[i], i));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
        return results;
    }

    /// <summary>
    /// Runs <paramref name="body"/> for each item in <paramref name="jobs"/> lanes, at most one <paramref name="exclusive"/> item at
    /// a time (the others run beside it), and none before the items <paramref name="after"/> names for it (indices of earlier
    /// items) have finished, whether they succeeded or threw. Each lane takes the earliest item it may start, so with one lane
    /// the items run in their order. An item that throws does not stop the others: every item runs, then the first
    /// exception is rethrown as itself.
    /// </summary>
    /// <exception cref="ArgumentException">An item waits for itself or for a later item.</exception>
    public static void Run<TItem>(IReadOnlyList<TItem> items, int jobs, Func<TItem, bool> exclusive, Action<TItem> body,
        Func<TItem, IEnumerable<int>>? after = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(exclusive);
        ArgumentNullException.ThrowIfNull(body);
        // Prerequisites point backwards only, so the earliest unfinished item can always start: no lane waits forever.
        var prerequisites = items.Select((item, i) => (after?.Invoke(item) ?? []).Distinct().ToArray()).ToArray();
        for (int i = 0; i < items.Count; i++)
        {
            foreach (int p in prerequisites[i])
                if (p < 0 || p >= i) throw new ArgumentException($"item {i} waits for item {p}: an item may only wait for earlier items", nameof(after));
        }
        var waiting = Enumerable.Range(0, items.Count).ToList();
        var finished = new bool[items.Count];
        object gate = new(); // a Monitor, not a Lock: lanes wait on it
        bool exclusiveRunning = false;

        bool MayStart(int i) => (!exclusiveRunning || !exclusive(items[i])) && prerequisites[i].All(p => finished[p]);

        // The index of the next item a lane may start, waiting while none may; -1 when none is left.
        int Take()
        {
            lock (gate)
            {
                while (waiting.Count > 0)
                {
                    int pick = waiting.FindIndex(MayStart);
                    if (pick >= 0)
                    {
                        int item = waiting[pick];
                        waiting.RemoveAt(pick);
                        exclusiveRunning |= exclusive(items[item]);
                        return item;
                    }
                    Monitor.Wait(gate);
                }
                return -1;
            }
        }

        ExceptionDispatchInfo? failure = null;
        void Lane()
        {
            for (int i = Take(); i >= 0; i = Take())
            {
                try
                {
                    body(items[i]);
                }
                catch (Exception e)
                {
                    // The other items still run (what they compute is kept); the first failure is rethrown at the end.
                    lock (gate) failure ??= ExceptionDispatchInfo.Capture(e);
                }
                finally
                {
                    lock (gate)
                    {
                        if (exclusive(items[i])) exclusiveRunning = false;
                        finished[i] = true;
                        Monitor.PulseAll(gate);
                    }
                }
            }
        }

        int lanes = Math.Max(1, Math.Min(jobs, items.Count));
        Map(Enumerable.Range(0, lanes).ToList(), lanes, (_, _) =>
        {
            Lane();
            return 0;
        });
        failure?.Throw();
    }
}
