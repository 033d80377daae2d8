using Parity.Data;
using Parity.Initialization;
using Parity.Models;
using Parity.Randomness;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Planning;

/// <summary>Resolves a validated spec into a <see cref="Plan"/>: draws the initial state and loads the data.</summary>
public static class Planner
{
    // The loader's limit on "training.steps"; epochs are held to the same number of steps.
    private const int MaxSteps = 100_000_000;

    /// <summary>Builds the plan. Data files that are missing or malformed raise <see cref="SpecException"/> naming the spec path.</summary>
    /// <param name="spec">A spec from <see cref="SpecLoader"/>.</param>
    /// <param name="stepsOverride">When set, train this many steps instead of the spec's schedule.</param>
    public static Plan Build(ScenarioSpec spec, int? stepsOverride = null)
    {
        var graph = new ModelGraph(spec.Model);
        var train = LoadSource(spec.Data.Train, spec, "$.data.train");
        var eval = spec.Data.Eval is null ? train : LoadSource(spec.Data.Eval, spec, "$.data.eval");
        if (spec.Data.EvalLimit is int limit) eval = eval.Take(limit);

        if (train.Features != spec.Model.Inputs)
            throw new SpecException("$.model.inputs", $"the model takes {spec.Model.Inputs} inputs but the training data has {train.Features} features ({train.Origin})");
        if (eval.Features != spec.Model.Inputs)
            throw new SpecException("$.model.inputs", $"the model takes {spec.Model.Inputs} inputs but the eval data has {eval.Features} features ({eval.Origin})");
        if (graph.OutputWidth != train.Classes)
            throw new SpecException("$.model.calls", $"the last call outputs {graph.OutputWidth} values but the data has {train.Classes} classes");
        if (eval.Classes != train.Classes)
            throw new SpecException("$.data.eval", $"the eval data has {eval.Classes} classes but the training data has {train.Classes}");
        if (train.Count < spec.Data.BatchSize)
            throw new SpecException("$.data.batchSize", $"batch size {spec.Data.BatchSize} exceeds the {train.Count} training samples");

        int stepsPerEpoch = train.Count / spec.Data.BatchSize;
        long total = stepsOverride ?? spec.Schedule.Steps ?? (long)stepsPerEpoch * spec.Schedule.Epochs!.Value;
        if (total < 1) throw new SpecException("$.training", $"the schedule gives {total} steps; at least 1 is needed");
        if (total > MaxSteps && stepsOverride is null && spec.Schedule.Steps is null)
            throw new SpecException("$.training.epochs", $"{spec.Schedule.Epochs} epochs of {stepsPerEpoch} steps make {total} steps, more than the limit of {MaxSteps}");
        var initial = spec.Init.From is { } from ? LoadInitialState(spec, graph, Resolve(from, spec.BaseDirectory)) : InitialState(spec, graph);
        return new Plan(spec, graph, initial, train, eval, stepsPerEpoch, (int)total);
    }

    /// <summary>
    /// The step-0 record of the trace at <paramref name="directory"/> (<c>init.from</c>), checked against the model:
    /// every parameter and running statistic present with its canonical shape, nothing else. Values are rounded to
    /// float32 like drawn ones, so float32 and float64 backends start from the same numbers.
    /// </summary>
    public static StepRecord LoadInitialState(ScenarioSpec spec, ModelGraph graph, string directory)
    {
        const string path = "$.init.from";
        StepRecord? first;
        try
        {
            first = TraceReader.Open(directory).Records().FirstOrDefault();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw new SpecException(path, $"cannot read the initial state from {directory}: {e.Message}");
        }
        if (first is null || first.Phase != RecordPhase.Initial)
            throw new SpecException(path, $"{directory} holds no initial-state record (step 0)");
        var expected = InitialState(spec, graph);
        var record = new StepRecord(0, RecordPhase.Initial);
        foreach (var e in expected.Entries)
        {
            var found = first.Find(e.Key.Kind, e.Key.Site)
                ?? throw new SpecException(path, $"{directory} lacks {e.Key} (the model has it)");
            if (!found.SameShape(e.Value))
                throw new SpecException(path, $"{directory}: {e.Key} has shape {found.ShapeText}; the model needs {e.Value.ShapeText}");
            var values = found.Data.Select(v => (double)(float)v).ToArray();
            if (values.Any(v => !double.IsFinite(v))) throw new SpecException(path, $"{directory}: {e.Key} holds a non-finite value");
            record.Add(e.Key.Kind, e.Key.Site, new Tensor(e.Value.Shape, values, DType.Float32));
        }
        foreach (var extra in first.Entries.Where(x => expected.Find(x.Key.Kind, x.Key.Site) is null))
            throw new SpecException(path, $"{directory} has {extra.Key}, which the model does not");
        return record;
    }

    /// <summary>
    /// Step 0 of every backend: each parameter drawn from its own stream
    /// <c>Derive(init.seed, "init/&lt;parameter name&gt;")</c> and rounded to float32; batchnorm and layernorm
    /// gamma 1, beta 0; running mean 0, running variance 1 (docs/conventions.md section 1, every framework but cs231n).
    /// </summary>
    public static StepRecord InitialState(ScenarioSpec spec, ModelGraph graph)
    {
        var record = new StepRecord(0, RecordPhase.Initial);
        foreach (var p in graph.Parameters)
        {
            var layer = spec.Model.Layer(p.Instance);
            int count = p.Shape.Aggregate(1, (a, b) => a * b);
            var values = new double[count];
            switch (layer, p.Local)
            {
                case (LinearSpec lin, "weight"):
                    Initializers.Fill(lin.WeightInit, values, lin.In, lin.Out, ParityRandom.Derive(spec.Init.Seed, "init/" + p.Name));
                    break;
                case (LinearSpec lin, "bias"):
                    Initializers.Fill(lin.BiasInit, values, lin.In, lin.Out, ParityRandom.Derive(spec.Init.Seed, "init/" + p.Name));
                    break;
                case (_, "gamma"):
                    values.AsSpan().Fill(1.0);
                    break;
                default:
                    break; // beta: zeros
            }
            for (int i = 0; i < values.Length; i++) values[i] = (float)values[i];
            record.Add(TensorKind.Parameter, p.Name, new Tensor(p.Shape, values, DType.Float32));
        }
        foreach (var bn in graph.BatchNorms)
        {
            record.Add(TensorKind.RunningMean, bn.Name, new Tensor([bn.Features], new double[bn.Features], DType.Float32));
            var ones = new double[bn.Features];
            ones.AsSpan().Fill(1.0);
            record.Add(TensorKind.RunningVariance, bn.Name, new Tensor([bn.Features], ones, DType.Float32));
        }
        return record;
    }

    private static DataSet LoadSource(DataSourceSpec source, ScenarioSpec spec, string path)
    {
        switch (source)
        {
            case SyntheticSourceSpec s:
                return SyntheticData.Generate(s);
            case IdxSourceSpec idx:
                string images = Resolve(idx.Images, spec.BaseDirectory), labels = Resolve(idx.Labels, spec.BaseDirectory);
                try
                {
                    return IdxReader.Load(images, labels, idx.Limit, idx.Normalize);
                }
                catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
                {
                    throw new SpecException(path, e.Message + FashionMnistHint(images));
                }
            default:
                throw new SpecException(path, $"unsupported data source '{source.Type}'");
        }
    }

    /// <summary>Directory holding Fashion-MNIST: <c>PARITY_FASHION_MNIST_DIR</c> or Debian's <c>dataset-fashion-mnist</c> location.</summary>
    public static string FashionMnistDirectory =>
        Environment.GetEnvironmentVariable("PARITY_FASHION_MNIST_DIR") is { Length: > 0 } dir ? dir : "/usr/share/datasets/fashion-mnist";

    private static string Resolve(string path, string baseDir)
    {
        const string prefix = "fashion-mnist:";
        if (path.StartsWith(prefix, StringComparison.Ordinal)) return Path.Combine(FashionMnistDirectory, path[prefix.Length..]);
        return Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(baseDir, path));
    }

    private static string FashionMnistHint(string path) =>
        path.StartsWith(FashionMnistDirectory, StringComparison.Ordinal) && !File.Exists(path)
            ? " (Fashion-MNIST comes from Debian's dataset-fashion-mnist package: run scripts/setup)"
            : "";
}
