using BenchmarkDotNet.Attributes;
using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Data;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;

namespace Parity.Benchmarks;

/// <summary>
/// One training step of the reference on fixtures/seed000-shared-bn.json (784-100-100-10, batch 1000, Adam), capture
/// off, on one thread: set beside <see cref="ProductBenchmarks{T}"/> it shows the share of the step the six matrix
/// products take (their 379.6 million floating-point operations are the OperationsPerInvoke, so GFLOP/s compare directly).
/// </summary>
public class StepBenchmarks
{
    private const int MatrixProductFlops = 2 * 1000 * (784 * 100 * 2 + 100 * 100 * 3 + 100 * 10 * 3); // l1: forward and dW; l2, l3: forward, dW, dx
    private Plan _plan = null!;
    private Batch _batch = null!;
    private IBackendSession _float32 = null!, _float64 = null!;
    private int _step;

    [GlobalSetup]
    public void Open()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "fixtures", "seed000-shared-bn.json")))
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("run from inside the repository: fixtures/ not found");
        _plan = Planner.Build(SpecLoader.LoadFile(Path.Combine(root, "fixtures", "seed000-shared-bn.json")), 10);
        _batch = _plan.BatchFor(1);
        _float32 = new ReferenceBackend(DType.Float32, maxDegreeOfParallelism: 1).Open(_plan, new BackendOptions(DType.Float32));
        _float64 = new ReferenceBackend(DType.Float64, maxDegreeOfParallelism: 1).Open(_plan, new BackendOptions(DType.Float64));
    }

    [GlobalCleanup]
    public void Close()
    {
        _float32.Dispose();
        _float64.Dispose();
    }

    [Benchmark(OperationsPerInvoke = MatrixProductFlops)]
    public void ReferenceFloat32Step() => _float32.Step(++_step, _batch, CaptureRequest.ScalarsOnly);

    [Benchmark(OperationsPerInvoke = MatrixProductFlops)]
    public void ReferenceFloat64Step() => _float64.Step(++_step, _batch, CaptureRequest.ScalarsOnly);
}
