using Parity.Data;
using Parity.Onnx;
using Parity.Onnx.Protobuf;
using Parity.Planning;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.OnnxRuntime;

/// <summary>
/// A session over the plan's initial state. <see cref="ReadState"/> exports that state to ONNX and reads
/// the initializers back (so step 0 checks the exporter's layout against the plan), <see cref="Evaluate"/>
/// runs the arbiter on it, and <see cref="Step"/> refuses: ONNX Runtime here does inference only.
/// Chosen over failing in <c>Open</c> so a run that lists onnxruntime as a training backend still shows
/// what it can do (a step-0 record) before the clear refusal at step 1.
/// </summary>
internal sealed class OnnxRuntimeSession : IBackendSession
{
    private readonly Plan _plan;
    private readonly DType _dtype;
    private readonly string? _device;

    public OnnxRuntimeSession(Plan plan, DType dtype, string? device)
    {
        _plan = plan;
        _dtype = dtype;
        _device = device;
        Mismatches = OnnxArbiter.Mismatches(plan.Spec, dtype);
        // One session on the initial state says which provider the evaluations will get, for the trace header.
        var (session, provider) = OnnxArbiter.OpenSession(OnnxExporter.ToBytes(plan.Graph, plan.Spec, plan.InitialState, dtype), device);
        session.Dispose();
        RuntimeInfo = new Dictionary<string, string>(provider.RuntimeInfo)
        {
            ["opset"] = OnnxExporter.OpsetFor(plan.Graph).ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
    }

    public IReadOnlyList<ConventionMismatch> Mismatches { get; }

    public IReadOnlyDictionary<string, string> RuntimeInfo { get; }

    public StepRecord ReadState(int step)
    {
        var model = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(_plan.Graph, _plan.Spec, _plan.InitialState, _dtype));
        var initializers = model.Graph.Initializer.ToDictionary(t => t.Name, t => OnnxImporter.InitializerValue(t, "exported model"));
        // The state never changes (Step refuses), so every read is the initial state.
        var record = new StepRecord(step, RecordPhase.Initial);
        foreach (var p in _plan.Graph.Parameters)
            record.Add(TensorKind.Parameter, p.Name, initializers[p.Name].As(_dtype));
        foreach (var bn in _plan.Graph.BatchNorms)
        {
            record.Add(TensorKind.RunningMean, bn.Name, initializers[OnnxExporter.RunningMeanName(bn.Name)].As(_dtype));
            record.Add(TensorKind.RunningVariance, bn.Name, initializers[OnnxExporter.RunningVarianceName(bn.Name)].As(_dtype));
        }
        return record;
    }

    public StepRecord Step(int step, Batch batch, CaptureRequest capture) =>
        throw new BackendException(OnnxRuntimeBackend.EvaluationOnlyMessage);

    public StepRecord Evaluate(int step, Batch data, CaptureRequest capture) =>
        OnnxArbiter.Evaluate(_plan.Graph, _plan.Spec, _plan.InitialState, data, _dtype, step, _device).Record;

    public void Dispose()
    {
        // Each evaluation owns and disposes its InferenceSession; nothing is held between calls.
    }
}
