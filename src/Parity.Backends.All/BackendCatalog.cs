using Parity.Backends.Native;
using Parity.Backends.PythonNet;
using Parity.Backends.TorchSharp;
using Parity.Harness;

namespace Parity.Backends.All;

/// <summary>
/// Every backend of this repository in one registry (docs/backends.md): <see cref="StandardBackends"/> plus the
/// in-process framework backends, TorchSharp (libtorch), the ILGPU native backend and PyTorch through pythonnet
/// (torch-pythonnet). The composition root of the
/// CLI; referencing this project brings libtorch's native libraries into the output.
/// </summary>
public static class BackendCatalog
{
    /// <summary>
    /// A registry holding every built-in backend plus the given <c>NAME=COMMAND</c> workers and the backends of the given
    /// <c>--python-adapter NAME=ADAPTER.py</c> values (each NAME in process and NAME-worker).
    /// </summary>
    public static BackendRegistry Create(IEnumerable<string>? workers = null, IEnumerable<string>? pythonAdapters = null)
    {
        var registry = StandardBackends.Create(workers, registry => registry
            .Add(TorchSharpBackend.BackendName, () => new TorchSharpBackend())
            .Add(NativeBackend.BackendName, () => new NativeBackend())
            .Add(PythonAdapterBackend.TorchPythonNetName, PythonAdapterBackend.TorchPythonNet));
        foreach (string adapter in pythonAdapters ?? [])
        {
            try
            {
                PythonAdapterBackend.AddFromOption(registry, adapter);
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }
        }
        return registry;
    }
}
