using Parity.Backends;
using Parity.Models;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Comparison.Tests;

/// <summary>Tiny models and hand-made traces for comparer tests: smooth deterministic values, altered on demand.</summary>
internal static class SyntheticTraces
{
    public const int Batch = 8;

    /// <summary>l1 (bias feeding batchnorm: not identifiable) -> bn1 -> relu -> l2.</summary>
    public const string BatchNormSpec = """
        {
          "name": "tiny-bn", "seed": 1,
          "model": {
            "inputs": 4,
            "layers": [
              { "name": "l1", "type": "linear", "in": 4, "out": 6, "init": { "weight": "he_normal", "bias": "zeros" } },
              { "name": "bn1", "type": "batchnorm", "features": 6, "momentum": 0.1, "eps": 1e-5, "runningVariance": "unbiased" },
              { "name": "relu", "type": "relu" },
              { "name": "l2", "type": "linear", "in": 6, "out": 3 }
            ],
            "calls": ["l1", "bn1", "relu", "l2"]
          },
          "optimizer": { "type": "adam", "lr": 0.01 },
          "data": {
            "train": { "type": "synthetic", "generator": "teacher", "samples": 64, "features": 4, "classes": 3, "seed": 1, "teacherSeed": 2 },
            "batchSize": 8, "shuffleSeed": 1
          },
          "training": { "steps": 6 },
          "evaluation": { "every": 1 }
        }
        """;

    /// <summary>The layout of traces of <paramref name="graph"/> under plain SGD (no optimizer slots), as the synthetic traces hold.</summary>
    public static TraceLayout Layout(ModelGraph graph) => new(graph, new SgdSpec(0.1, 0));

    /// <summary>One batchnorm instance called after two linear layers (the seed 000 shape).</summary>
    public const string SharedSpec = """
        {
          "name": "tiny-shared", "seed": 1,
          "model": {
            "inputs": 4,
            "layers": [
              { "name": "l1", "type": "linear", "in": 4, "out": 6 },
              { "name": "bn", "type": "batchnorm", "features": 6, "momentum": 0.1, "eps": 1e-3, "runningVariance": "unbiased" },
              { "name": "relu", "type": "relu" },
              { "name": "l2", "type": "linear", "in": 6, "out": 6 },
              { "name": "l3", "type": "linear", "in": 6, "out": 3 }
            ],
            "calls": ["l1", "bn", "relu", "l2", "bn", "relu", "l3"]
          },
          "optimizer": { "type": "adam", "lr": 0.01 },
          "data": {
            "train": { "type": "synthetic", "generator": "teacher", "samples": 64, "features": 4, "classes": 3, "seed": 1, "teacherSeed": 2 },
            "batchSize": 8, "shuffleSeed": 1
          },
          "training": { "steps": 4 }
        }
        """;

    public static ModelGraph Graph(string json) => Planner.Build(SpecLoader.Parse(json)).Graph;

    /// <summary>Options for <see cref="Write"/>.</summary>
    public sealed record Options
    {
        public int Steps { get; init; } = 6;
        public int EvalEvery { get; init; } = 1;
        public Func<int, bool> Captured { get; init; } = _ => true;
        public Action<TensorAt, double[]>? Alter { get; init; }
        public Func<TensorAt, bool>? Omit { get; init; }
        public int? FailAfter { get; init; }
        public string FailMessage { get; init; } = "at step 3: BackendException: worker crashed";
        public List<ConventionMismatch> Mismatches { get; init; } = [];
    }

    /// <summary>Writes a trace of the graph's tensors under <paramref name="directory"/> and opens it.</summary>
    public static TraceReader Write(string directory, ModelGraph graph, string backend, DType dtype, Options? options = null)
    {
        options ??= new Options();
        var header = new TraceHeader { Backend = backend, DType = dtype.Name(), Scenario = "synthetic", SpecHash = "test", Mismatches = options.Mismatches };
        using (var writer = TraceWriter.Create(directory, header))
        {
            var initial = new StepRecord(0, RecordPhase.Initial);
            foreach (var p in graph.Parameters) Add(initial, TensorKind.Parameter, p.Name, p.Shape, dtype, options);
            foreach (var bn in graph.BatchNorms)
            {
                Add(initial, TensorKind.RunningMean, bn.Name, [bn.Features], dtype, options);
                Add(initial, TensorKind.RunningVariance, bn.Name, [bn.Features], dtype, options);
            }
            writer.Write(initial);
            int completed = 0;
            for (int step = 1; step <= options.Steps; step++)
            {
                if (options.FailAfter is int fail && step > fail) break;
                bool full = options.Captured(step);
                var train = new StepRecord(step, RecordPhase.Train);
                if (full)
                {
                    foreach (var call in graph.Calls)
                    {
                        if (call.IsBatchNorm)
                        {
                            Add(train, TensorKind.BatchMean, call.Id, [call.OutWidth], dtype, options);
                            Add(train, TensorKind.BatchVariance, call.Id, [call.OutWidth], dtype, options);
                        }
                        Add(train, TensorKind.Forward, call.Id, [Batch, call.OutWidth], dtype, options);
                    }
                }
                Add(train, TensorKind.Loss, "", [], dtype, options);
                Add(train, TensorKind.TrainAccuracy, "", [], dtype, options);
                if (full)
                {
                    foreach (var call in graph.Calls.Reverse()) Add(train, TensorKind.OutputGradient, call.Id, [Batch, call.OutWidth], dtype, options);
                    foreach (var p in graph.Parameters) Add(train, TensorKind.ParameterGradient, p.Name, p.Shape, dtype, options);
                    foreach (var bn in graph.BatchNorms)
                    {
                        Add(train, TensorKind.RunningMean, bn.Name, [bn.Features], dtype, options);
                        Add(train, TensorKind.RunningVariance, bn.Name, [bn.Features], dtype, options);
                    }
                    foreach (var p in graph.Parameters) Add(train, TensorKind.Parameter, p.Name, p.Shape, dtype, options);
                }
                writer.Write(train);
                if (options.EvalEvery > 0 && step % options.EvalEvery == 0)
                {
                    var eval = new StepRecord(step, RecordPhase.Eval);
                    if (full)
                        foreach (var call in graph.Calls) Add(eval, TensorKind.EvalOutput, call.Id, [Batch, call.OutWidth], dtype, options);
                    Add(eval, TensorKind.EvalLoss, "", [], dtype, options);
                    Add(eval, TensorKind.EvalAccuracy, "", [], dtype, options);
                    writer.Write(eval);
                }
                completed = step;
            }
            bool failed = options.FailAfter is not null;
            writer.UpdateHeader(h => h with
            {
                Status = failed ? RunStatus.Failed : RunStatus.Completed,
                Message = failed ? options.FailMessage : null,
                StepsCompleted = completed,
            });
        }
        return TraceReader.Open(directory);
    }

    /// <summary>The value every trace holds before alteration: smooth in the element index and the step.</summary>
    public static double BaseValue(TensorAt at, int i)
    {
        int h = 17;
        foreach (char c in at.Key.ToString() + at.Phase) h = unchecked(h * 31 + c);
        double v = Math.Sin((h % 1000) * 0.37 + i * 0.91 + at.Step * 0.13);
        return at.Key.Kind switch
        {
            TensorKind.RunningVariance or TensorKind.BatchVariance => 1.5 + 0.5 * v,
            TensorKind.TrainAccuracy or TensorKind.EvalAccuracy => 0.5 + 0.25 * v,
            TensorKind.Loss or TensorKind.EvalLoss => 1.2 + 0.1 * v,
            _ => v,
        };
    }

    private static void Add(StepRecord record, TensorKind kind, string site, int[] shape, DType dtype, Options options)
    {
        var at = new TensorAt(record.Step, record.Phase, new TensorKey(kind, site));
        if (options.Omit?.Invoke(at) == true) return;
        int count = shape.Aggregate(1, (a, b) => a * b);
        var data = new double[count];
        for (int i = 0; i < count; i++) data[i] = BaseValue(at, i);
        options.Alter?.Invoke(at, data);
        if (dtype == DType.Float32)
            for (int i = 0; i < count; i++) data[i] = (float)data[i];
        record.Add(kind, site, new Tensor(shape, data, dtype));
    }
}
