namespace Parity.Data;

/// <summary>
/// Data sets read from files, shared by every plan that reads the same files the same way while any of those plans is
/// alive: the arms of a study (two models on Fashion-MNIST, trained at once) hold one copy of the data instead of one each.
/// A <see cref="DataSet"/> is never written once read, so sharing it changes nothing a plan computes. The cache holds its
/// sets weakly (a set goes when the last plan holding it does), and a file whose length or time of last write has changed
/// since is read again.
/// </summary>
internal static class SharedDataSets
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, WeakReference<DataSet>> Loaded = new(StringComparer.Ordinal);

    /// <summary>
    /// The set <paramref name="read"/> makes of <paramref name="files"/> read as <paramref name="how"/> says (every setting
    /// the result depends on): read once while it is held, whoever asks. A missing file is left to <paramref name="read"/> to report.
    /// </summary>
    public static DataSet Load(string how, IReadOnlyList<string> files, Func<DataSet> read)
    {
        var stamps = files.Select(f => new FileInfo(f)).ToList();
        if (stamps.Any(f => !f.Exists)) return read();
        string key = how + "\n" + string.Join("\n", stamps.Select(f => $"{f.FullName}\t{f.Length}\t{f.LastWriteTimeUtc.Ticks}"));
        // One lock for every load: two plans that ask for the same file at once read it once, the second waiting for the first.
        lock (Gate)
        {
            if (Loaded.TryGetValue(key, out var held) && held.TryGetTarget(out var shared)) return shared;
            var set = read();
            foreach (string gone in Loaded.Where(e => !e.Value.TryGetTarget(out _)).Select(e => e.Key).ToList()) Loaded.Remove(gone);
            Loaded[key] = new WeakReference<DataSet>(set);
            return set;
        }
    }
}
