using Parity.Backends;
using Parity.Backends.OnnxRuntime;
using Parity.Backends.Reference;
using Parity.Backends.Workers;
using Parity.Tensors;

namespace Parity.Harness;

/// <summary>
/// The backends that carry no large native library: the float64 and float32 reference, the built-in workers (keras,
/// torch-python), the ONNX Runtime arbiter, and <c>--worker NAME=COMMAND</c> workers. In-process framework backends
/// (TorchSharp with libtorch, the ILGPU native backend) live in their own projects and are added by the program that
/// ships them (the CLI's catalog, or a test project), so a library user who needs only the reference and a worker does
/// not download libtorch.
/// </summary>
public static class StandardBackends
{
    /// <summary>
    /// A registry: reference, reference-f32, then <paramref name="inProcess"/>'s backends, the built-in workers, the
    /// ONNX Runtime arbiter and the given <c>NAME=COMMAND</c> workers, in that order (the order <c>parity backends</c> lists).
    /// </summary>
    /// <param name="workers"><c>--worker</c> values.</param>
    /// <param name="inProcess">Registers in-process framework backends after the reference.</param>
    public static BackendRegistry Create(IEnumerable<string>? workers = null, Action<BackendRegistry>? inProcess = null)
    {
        var registry = new BackendRegistry()
            .Add(ReferenceBackend.Float64Name, ReferenceBackend.Float64, DType.Float64)
            .Add(ReferenceBackend.Float32Name, ReferenceBackend.Float32, DType.Float32);
        inProcess?.Invoke(registry);
        registry.AddBuiltInWorkers().Add(OnnxArbitration.BackendName, () => new OnnxRuntimeBackend());
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
        ArgumentNullException.ThrowIfNull(registry);
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
