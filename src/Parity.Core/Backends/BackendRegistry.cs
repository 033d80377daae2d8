using Parity.Tensors;

namespace Parity.Backends;

/// <summary>
/// The backends a run can use, by name. Built-in backends and <c>--worker NAME=COMMAND</c> backends are
/// registered the same way. A selection may carry a dtype: <c>torchsharp@float64</c>.
/// </summary>
public sealed class BackendRegistry
{
    private readonly Dictionary<string, Func<IBackend>> _factories = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DType> _fixedDTypes = new(StringComparer.Ordinal);

    /// <summary>Registers a backend under its name. <paramref name="fixedDType"/> pins the dtype (e.g. <c>reference</c> is float64).</summary>
    public BackendRegistry Add(string name, Func<IBackend> factory, DType? fixedDType = null)
    {
        _factories[name] = factory;
        if (fixedDType is DType d) _fixedDTypes[name] = d;
        return this;
    }

    /// <summary>Registered names in registration order.</summary>
    public IEnumerable<string> Names => _factories.Keys;

    /// <summary>Creates the named backend.</summary>
    public IBackend Create(string name) =>
        _factories.TryGetValue(name, out var f) ? f() : throw new KeyNotFoundException($"unknown backend '{name}'; known: {string.Join(", ", _factories.Keys)}");

    /// <summary>True when <paramref name="name"/> is registered.</summary>
    public bool Contains(string name) => _factories.ContainsKey(name);

    /// <summary>
    /// Parses one <c>--backends</c> item, <c>NAME</c> or <c>NAME@float32|float64</c>, into the backend name,
    /// the display name (the item as written) and the dtype (pinned, requested, or the spec's).
    /// </summary>
    public (string Name, string Display, DType DType) Resolve(string item, DType specDType)
    {
        string name = item, display = item;
        DType? requested = null;
        int at = item.IndexOf('@');
        if (at >= 0)
        {
            name = item[..at];
            requested = DTypes.TryParse(item[(at + 1)..]) ?? throw new ArgumentException($"'{item}': unknown dtype '{item[(at + 1)..]}'; use @float32 or @float64");
        }
        if (!Contains(name)) throw new ArgumentException($"unknown backend '{name}'; known: {string.Join(", ", _factories.Keys)}");
        if (_fixedDTypes.TryGetValue(name, out var pinned))
        {
            if (requested is DType r && r != pinned) throw new ArgumentException($"backend '{name}' always runs in {pinned.Name()}");
            return (name, display, pinned);
        }
        return (name, display, requested ?? specDType);
    }
}
