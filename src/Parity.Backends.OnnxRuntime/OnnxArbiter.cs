using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Parity.Data;
using Parity.Models;
using Parity.Onnx;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.OnnxRuntime;

/// <summary>
/// One arbitration: a training backend's own eval record at a step and ONNX Runtime's eval record for
/// that backend's checkpoint at the same step. Compare <see cref="Backend"/> against <see cref="Onnx"/>.
/// </summary>
/// <param name="Step">The checkpoint's step.</param>
/// <param name="Backend">The eval record the training backend wrote at that step.</param>
/// <param name="Onnx">The arbiter's eval record for the same state and eval batch.</param>
/// <param name="Provider">The execution provider ONNX Runtime ran it on.</param>
public sealed record ArbiterCheck(int Step, StepRecord Backend, StepRecord Onnx, OnnxExecutionProvider Provider);

/// <summary>
/// The ONNX Runtime arbiter (docs/onnx.md): exports a checkpoint (parameters and running statistics)
/// with <see cref="OnnxExporter"/>, runs it in ONNX Runtime (the CUDA execution provider when it loads, else the CPU one,
/// <see cref="OnnxExecutionProvider"/>) and returns the
/// eval-mode output of every call site. ONNX's operator definitions are the neutral statement of
/// inference semantics, so a training backend whose eval outputs differ from ONNX Runtime's for its own
/// state has an inference bug (running statistics, eps placement, a mode mix-up) that train-mode
/// comparisons cannot see.
/// </summary>
public static class OnnxArbiter
{
    /// <summary>The ONNX Runtime version (loads the native library; throws when it cannot).</summary>
    public static string RuntimeVersion => OrtEnv.Instance().GetVersionString();

    /// <summary>Evaluates <paramref name="state"/> on <paramref name="evalBatch"/> in ONNX Runtime.</summary>
    /// <param name="graph">The resolved model.</param>
    /// <param name="spec">The spec (normalization eps).</param>
    /// <param name="state">Every parameter and running statistic (an Initial or Train record, or any record holding them).</param>
    /// <param name="evalBatch">The evaluation samples.</param>
    /// <param name="dtype">The precision to evaluate in: the training backend's dtype.</param>
    /// <param name="device"><c>cpu</c>, or <c>cuda</c> or null for CUDA when it loads (<see cref="OnnxExecutionProvider"/>).</param>
    /// <returns>
    /// A <see cref="RecordPhase.Eval"/> record for <c>state.Step</c>: <see cref="TensorKind.EvalOutput"/> per call
    /// id ([batch, width]), then <see cref="TensorKind.EvalLoss"/> (mean softmax cross-entropy) and
    /// <see cref="TensorKind.EvalAccuracy"/>, computed here from ORT's logits in float64 and rounded to
    /// <paramref name="dtype"/>.
    /// </returns>
    /// <exception cref="ArgumentException">The state lacks an entry or has a wrong shape.</exception>
    /// <exception cref="BackendException">ONNX Runtime cannot load or run the model (its message included).</exception>
    public static StepRecord Check(ModelGraph graph, ScenarioSpec spec, StepRecord state, Batch evalBatch, DType dtype, string? device = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        return Evaluate(graph, spec, state, evalBatch, dtype, state.Step, device).Record;
    }

    /// <summary>
    /// Arbitrates one training backend's trace: the last step that has both a full state (a captured train
    /// record with every parameter and running statistic) and an eval record; null when there is none.
    /// </summary>
    /// <param name="plan">The plan the trace was run from.</param>
    /// <param name="traceDirectory">The backend's trace directory.</param>
    /// <param name="device"><c>cpu</c>, or <c>cuda</c> or null for CUDA when it loads (<see cref="OnnxExecutionProvider"/>).</param>
    public static ArbiterCheck? CheckTrace(Plan plan, string traceDirectory, string? device = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var trace = TraceReader.Open(traceDirectory);
        var dtype = DTypes.TryParse(trace.Header.DType) ?? throw new InvalidDataException($"{traceDirectory}: unknown dtype '{trace.Header.DType}'");
        StepRecord? lastState = null;
        (StepRecord State, StepRecord Eval)? found = null;
        foreach (var record in trace.Records())
        {
            if (record.Phase != RecordPhase.Eval && HoldsFullState(plan.Graph, record)) lastState = record;
            else if (record.Phase == RecordPhase.Eval && lastState is not null && lastState.Step == record.Step) found = (lastState, record);
        }
        if (found is not { } pair) return null;
        var (onnx, provider) = Evaluate(plan.Graph, plan.Spec, pair.State, plan.EvalBatch(), dtype, pair.State.Step, device);
        return new ArbiterCheck(pair.State.Step, pair.Eval, onnx, provider);
    }

    /// <summary>
    /// Where ONNX cannot hold the spec exactly in <paramref name="dtype"/>: ONNX float attributes are
    /// float32, so a float64 evaluation uses eps, a LeakyReLU slope or an ELU alpha rounded to float32 (relative
    /// change up to 6e-8).
    /// </summary>
    public static IReadOnlyList<ConventionMismatch> Mismatches(ScenarioSpec spec, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var result = new List<ConventionMismatch>();
        if (dtype != DType.Float64) return result;
        for (int i = 0; i < spec.Model.Layers.Count; i++)
        {
            (string Key, double Value)? setting = spec.Model.Layers[i] switch
            {
                BatchNormSpec bn => ("eps", bn.Eps),
                LayerNormSpec ln => ("eps", ln.Eps),
                LeakyReluSpec leaky => ("slope", leaky.Slope),
                EluSpec elu => ("alpha", elu.Alpha),
                _ => null,
            };
            if (setting is (string key, double e) && (float)e != e)
                result.Add(new ConventionMismatch($"$.model.layers[{i}].{key}", e.ToString("R", CultureInfo.InvariantCulture),
                    $"{((double)(float)e).ToString("R", CultureInfo.InvariantCulture)} (ONNX float attributes are float32)",
                    [TensorKind.EvalOutput.Name(), TensorKind.EvalLoss.Name(), TensorKind.EvalAccuracy.Name()]));
        }
        return result;
    }

    internal static (StepRecord Record, OnnxExecutionProvider Provider) Evaluate(ModelGraph graph, ScenarioSpec spec, StepRecord state, Batch evalBatch,
        DType dtype, int step, string? device)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(evalBatch);
        byte[] model = OnnxExporter.ToBytes(graph, spec, state, dtype);
        string[] outputNames = graph.Calls.Select(c => c.Id).ToArray();
        var record = new StepRecord(step, RecordPhase.Eval);
        OnnxExecutionProvider provider;
        try
        {
            var (opened, used) = OpenSession(model, device);
            using var session = opened;
            provider = used;
            long[] inputShape = [evalBatch.Size, evalBatch.Features];
            using var input = dtype == DType.Float32
                ? OrtValue.CreateTensorValueFromMemory(evalBatch.Inputs.ToFloats(), inputShape)
                : OrtValue.CreateTensorValueFromMemory((double[])evalBatch.Inputs.Data.Clone(), inputShape);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, [OnnxExporter.InputName], [input], outputNames);
            for (int i = 0; i < outputNames.Length; i++)
            {
                int[] shape = [evalBatch.Size, graph.Calls[i].OutWidth];
                var value = dtype == DType.Float32
                    ? Tensor.FromFloats(outputs[i].GetTensorDataAsSpan<float>(), shape)
                    : Tensor.FromDoubles(outputs[i].GetTensorDataAsSpan<double>(), shape);
                record.Add(TensorKind.EvalOutput, outputNames[i], value);
            }
        }
        catch (OnnxRuntimeException e)
        {
            throw new BackendException($"ONNX Runtime could not evaluate the exported {dtype.Name()} model of '{spec.Name}' at step {state.Step}: {e.Message}", e);
        }

        var logits = record.Find(TensorKind.EvalOutput, graph.Calls[^1].Id)!;
        var (loss, accuracy) = LossAndAccuracy(logits, evalBatch.Labels);
        if (spec.Loss != LossSpec.Default) loss = SpecLoss(spec.Loss, logits, evalBatch);
        record.AddScalar(TensorKind.EvalLoss, dtype == DType.Float32 ? (float)loss : loss, dtype);
        if (spec.Loss.HasAccuracy) record.AddScalar(TensorKind.EvalAccuracy, dtype == DType.Float32 ? (float)accuracy : accuracy, dtype);
        return (record, provider);
    }

    /// <summary>An arbiter session on <paramref name="model"/>: CUDA when <paramref name="device"/> allows it and it loads, else the CPU.</summary>
    internal static (InferenceSession Session, OnnxExecutionProvider Provider) OpenSession(byte[] model, string? device) =>
        OnnxExecutionProvider.Open(model, device, ConfigureSession);

    // No graph optimizations: the arbiter evaluates the operators as the ONNX spec defines them,
    // not a fused rewrite of them (ORT may fold BatchNormalization into Gemm otherwise).
    private static void ConfigureSession(SessionOptions options)
    {
        options.GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL;
        options.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
        options.IntraOpNumThreads = 1;
        options.InterOpNumThreads = 1;
    }

    /// <summary>Mean softmax cross-entropy (max-shifted log-sum-exp) and the fraction whose first argmax is the label.</summary>
    internal static (double Loss, double Accuracy) LossAndAccuracy(Tensor logits, int[] labels)
    {
        int rows = logits.Shape[0], classes = logits.Shape[1];
        double total = 0;
        int correct = 0;
        for (int r = 0; r < rows; r++)
        {
            var row = logits.Data.AsSpan(r * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++)
                if (row[c] > row[best]) best = c;
            double max = row[best], sum = 0;
            foreach (double v in row) sum += Math.Exp(v - max);
            total += max + Math.Log(sum) - row[labels[r]];
            if (best == labels[r]) correct++;
        }
        return (total / rows, (double)correct / rows);
    }

    /// <summary>
    /// The spec's loss other than plain softmax cross-entropy, in float64 (docs/spec.md, "Loss"): smoothed softmax
    /// cross-entropy, or the mean over all elements of the squared error or the binary cross-entropy from logits.
    /// </summary>
    internal static double SpecLoss(LossSpec loss, Tensor outputs, Batch batch)
    {
        int rows = outputs.Shape[0], width = outputs.Shape[1];
        var y = outputs.Data;
        double total = 0;
        if (loss.Function == LossFunction.SoftmaxCrossEntropy)
        {
            double off = loss.LabelSmoothing / width, on = 1 - loss.LabelSmoothing + off;
            for (int r = 0; r < rows; r++)
            {
                var row = y.AsSpan(r * width, width);
                double max = double.NegativeInfinity, sum = 0;
                foreach (double v in row) max = Math.Max(max, v);
                foreach (double v in row) sum += Math.Exp(v - max);
                double lse = max + Math.Log(sum);
                for (int c = 0; c < width; c++) total += (c == batch.Labels[r] ? on : off) * (lse - row[c]);
            }
            return total / rows;
        }
        var t = batch.Targets ?? throw new ArgumentException($"the loss '{loss.Type}' needs float targets and the eval batch has none");
        for (int i = 0; i < y.Length; i++)
        {
            double z = y[i], target = t.Data[i];
            total += loss.Function == LossFunction.MeanSquaredError
                ? (z - target) * (z - target)
                : Math.Max(z, 0) - z * target + Math.Log(1 + Math.Exp(-Math.Abs(z)));
        }
        return total / y.Length;
    }

    private static bool HoldsFullState(ModelGraph graph, StepRecord record) =>
        graph.Parameters.All(p => record.Find(TensorKind.Parameter, p.Name) is not null)
        && graph.BatchNorms.All(b => record.Find(TensorKind.RunningMean, b.Name) is not null && record.Find(TensorKind.RunningVariance, b.Name) is not null);
}
