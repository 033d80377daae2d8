using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Tensors;

namespace Parity.Harness;

/// <summary>The built-in backends, registered in one place; <c>--worker NAME=COMMAND</c> adds more the same way.</summary>
public static class BackendCatalog
{
    /// <summary>A registry holding every built-in backend plus the given workers.</summary>
    public static BackendRegistry Create(IEnumerable<string>? workers = null)
    {
        var registry = new BackendRegistry()
            .Add(ReferenceBackend.Float64Name, ReferenceBackend.Float64, DType.Float64)
            .Add(ReferenceBackend.Float32Name, ReferenceBackend.Float32, DType.Float32);
        foreach (string w in workers ?? [])
        {
            int eq = w.IndexOf('=');
            if (eq <= 0 || eq == w.Length - 1) throw new UsageException($"--worker '{w}': expected NAME=COMMAND");
            string name = w[..eq];
            if (registry.Contains(name)) throw new UsageException($"--worker '{w}': a backend named '{name}' already exists");
            throw new UsageException("--worker needs the worker backend, which this build does not include");
        }
        return registry;
    }

    /// <summary>Parses a <c>--backends</c> item (NAME or NAME@dtype); an unknown name or dtype is a <see cref="UsageException"/>.</summary>
    public static (string Name, string Display, DType DType) Resolve(BackendRegistry registry, string item, DType specDType)
    {
        try
        {
            return registry.Resolve(item, specDType);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }
}
