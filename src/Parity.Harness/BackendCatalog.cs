using Parity.Backends;
using Parity.Backends.Native;
using Parity.Backends.OnnxRuntime;
using Parity.Backends.Reference;
using Parity.Backends.TorchSharp;
using Parity.Backends.Workers;
using Parity.Tensors;

namespace Parity.Harness;

/// <summary>
/// The built-in backends, registered in one place (docs/backends.md). <c>--worker NAME=COMMAND</c> backends are
/// registered the same way, after the built-ins.
/// </summary>
public static class BackendCatalog
{
    /// <summary>A registry holding every built-in backend plus the given <c>NAME=COMMAND</c> workers.</summary>
    public static BackendRegistry Create(IEnumerable<string>? workers = null)
    {
        var registry = new BackendRegistry()
            .Add(ReferenceBackend.Float64Name, ReferenceBackend.Float64, DType.Float64)
            .Add(ReferenceBackend.Float32Name, ReferenceBackend.Float32, DType.Float32)
            .Add(TorchSharpBackend.BackendName, () => new TorchSharpBackend())
            .Add(NativeBackend.BackendName, () => new NativeBackend())
            .AddBuiltInWorkers()
            .Add(OnnxArbitration.BackendName, () => new OnnxRuntimeBackend());
        foreach (string w in workers ?? [])
        {
            IBackend worker;
            try
            {
                worker = WorkerRegistry.FromOption(w);
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }
            if (registry.Contains(worker.Name)) throw new UsageException($"--worker '{w}': a backend named '{worker.Name}' already exists");
            registry.Add(worker.Name, () => WorkerRegistry.FromOption(w));
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
