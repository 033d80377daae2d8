namespace Parity.Specs;

/// <summary>
/// Every mistake found while reading one spec, so that one load reports them all. A part of the spec that fails
/// records its error and gives a fallback; the reader goes on with the next part that does not depend on it.
/// </summary>
internal sealed class SpecErrors
{
    // Enough for any real spec; a generated spec with thousands of broken layers gets a count of the rest.
    private const int MaxListed = 50;

    private readonly List<SpecException> _errors = [];
    private int _unlisted;

    /// <summary>How many errors were found so far.</summary>
    public int Count => _errors.Count + _unlisted;

    /// <summary>Records <paramref name="error"/> (each of its errors once).</summary>
    public void Add(SpecException error)
    {
        foreach (var e in error.Errors)
        {
            if (_errors.Any(x => x.JsonPath == e.JsonPath && x.Problem == e.Problem)) continue;
            if (_errors.Count < MaxListed) _errors.Add(e);
            else _unlisted++;
        }
    }

    /// <summary>The value <paramref name="read"/> gives, or <paramref name="fallback"/> with its error recorded.</summary>
    public T Read<T>(Func<T> read, T fallback)
    {
        try
        {
            return read();
        }
        catch (SpecException e)
        {
            Add(e);
            return fallback;
        }
    }

    /// <summary>Runs <paramref name="check"/>, recording its error; true when it (and what it recorded) found none.</summary>
    public bool Check(Action check)
    {
        int before = Count;
        try
        {
            check();
        }
        catch (SpecException e)
        {
            Add(e);
        }
        return Count == before;
    }

    /// <summary>Throws one <see cref="SpecException"/> listing every error, when there is any.</summary>
    public void ThrowIfAny()
    {
        if (Count == 0) return;
        var listed = new List<SpecException>(_errors);
        if (_unlisted > 0) listed.Add(new SpecException("$", $"{_unlisted} more error(s) not listed; fix the ones above first"));
        throw SpecException.Combine(listed);
    }
}
