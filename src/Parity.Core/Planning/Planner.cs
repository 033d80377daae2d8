using Parity.Data;
using Parity.Initialization;
using Parity.IO;
using Parity.Models;
using Parity.Randomness;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Planning;

/// <summary>
/// Resolves a validated spec into a <see cref="Plan"/>: checks every size against the limits and the memory budget,
/// then loads the data and draws the initial state. Everything that can be refused is refused before a data set is
/// read or a buffer allocated.
/// </summary>
public static class Planner
{
    /// <summary>The most optimizer steps a run may have: the loader's limit on <c>training.steps</c>, applied to epochs and to a steps override too.</summary>
    public const int MaxSteps = 100_000_000;

    /// <summary>
    /// The most values one tensor may hold (2^28): a batch's activations of one call, an eval chunk's, the merged
    /// eval-mode output of one call. Every backend indexes a tensor with 32-bit integers, and a float64 tensor at this
    /// limit is 2 GiB.
    /// </summary>
    public const long MaxTensorValues = 256L << 20;

    /// <summary>
    /// Builds the plan. A spec value the machine cannot hold, data files that are missing or malformed, or data that
    /// does not fit the model raise <see cref="SpecException"/> naming the spec path (and the spec file, when the spec
    /// came from one).
    /// </summary>
    /// <param name="spec">A spec from <see cref="SpecLoader"/>.</param>
    /// <param name="stepsOverride">When set, train this many steps (at most <see cref="MaxSteps"/>) instead of the spec's schedule.</param>
    /// <param name="memoryBudget">The most bytes the run may be estimated to need; null: <see cref="MemoryBudget.Current"/>.</param>
    public static Plan Build(ScenarioSpec spec, int? stepsOverride = null, long? memoryBudget = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        try
        {
            return BuildChecked(spec, stepsOverride, memoryBudget);
        }
        catch (SpecException e) when (e.File is null && spec.SourceFile is { } file)
        {
            throw e.WithFile(file);
        }
    }

    private static Plan BuildChecked(ScenarioSpec spec, int? stepsOverride, long? memoryBudget)
    {
        var graph = new ModelGraph(spec.Model);
        var trainExtent = Extent(spec.Data.Train, spec, "$.data.train", null);
        var evalExtent = spec.Data.Eval is null
            ? trainExtent with { Count = Math.Min(trainExtent.Count, spec.Data.EvalLimit ?? int.MaxValue) }
            : Extent(spec.Data.Eval, spec, "$.data.eval", spec.Data.EvalLimit);

        // Independent of each other: all are reported together.
        var misfits = new List<SpecException>();
        if (trainExtent.Features != spec.Model.Inputs)
            misfits.Add(new SpecException("$.model.inputs", $"the model takes {spec.Model.Inputs} inputs but the training data has {trainExtent.Features} features ({trainExtent.Origin})"));
        if (spec.Data.Eval is not null && evalExtent.Features != spec.Model.Inputs)
            misfits.Add(new SpecException("$.model.inputs", $"the model takes {spec.Model.Inputs} inputs but the eval data has {evalExtent.Features} features ({evalExtent.Origin})"));
        if (trainExtent.Count < spec.Data.BatchSize)
            misfits.Add(new SpecException("$.data.batchSize", $"batch size {spec.Data.BatchSize} exceeds the {trainExtent.Count} training samples"));
        if (misfits.Count > 0) throw SpecException.Combine(misfits);

        int stepsPerEpoch = trainExtent.Count / spec.Data.BatchSize;
        long total = stepsOverride ?? spec.Schedule.Steps ?? (long)stepsPerEpoch * spec.Schedule.Epochs!.Value;
        if (total < 1) throw new SpecException("$.training", $"the schedule gives {total} steps; at least 1 is needed");
        if (total > MaxSteps && stepsOverride is null)
            throw new SpecException("$.training.epochs", $"{spec.Schedule.Epochs} epochs of {stepsPerEpoch} steps make {total} steps, more than the limit of {MaxSteps}");
        if (total > MaxSteps) throw new SpecException("$.training.steps", $"the run asks for {total} steps, more than the limit of {MaxSteps}");

        int evalBatchSize = spec.Schedule.EvalBatchSize ?? spec.Data.BatchSize;
        CheckTensorSizes(spec, graph, evalExtent.Count, evalBatchSize);
        var memory = MemoryEstimate.Of(spec, graph, trainExtent, evalExtent, spec.Data.Eval is not null, evalBatchSize);
        long budget = memoryBudget ?? MemoryBudget.Current;
        if (memory.TotalBytes > budget)
        {
            var d = memory.Dominant;
            throw new SpecException(d.JsonPath, $"the run needs an estimated {MemoryBudget.Format(memory.TotalBytes)} of memory, more than the budget of "
                + $"{MemoryBudget.Format(budget)}; the largest part is {d.What} ({MemoryBudget.Format(d.Bytes)}). Make it smaller, or set "
                + $"{MemoryBudget.EnvironmentVariable} (e.g. 64G) on a machine that has the memory (docs/spec.md, \"Memory\")");
        }

        var train = LoadSource(spec.Data.Train, spec, "$.data.train", null, graph.OutputWidth);
        var eval = spec.Data.Eval is null ? train : LoadSource(spec.Data.Eval, spec, "$.data.eval", spec.Data.EvalLimit, graph.OutputWidth);
        if (spec.Data.EvalLimit is int limit) eval = eval.Take(limit);
        var loss = spec.Loss;
        if (loss.Targets == TargetSource.Data && !eval.HasTargets)
            throw new SpecException("$.loss.targets", $"the eval data ({eval.Origin}) has no float targets; give an eval source with targets (the 'regression' generator)");
        train = train.WithTargetsFrom(loss.Targets, loss.ElementWise);
        eval = eval.WithTargetsFrom(loss.Targets, loss.ElementWise);
        if (loss.Targets == TargetSource.Labels && graph.OutputWidth != train.Classes)
            throw new SpecException("$.model.calls", $"the last call outputs {graph.OutputWidth} values but the data has {train.Classes} classes");
        if (loss.Targets != TargetSource.Labels && graph.OutputWidth != train.TargetWidth)
            throw new SpecException("$.model.calls", $"the last call outputs {graph.OutputWidth} values but the loss's targets ({loss.TargetsName}) have {train.TargetWidth} per sample");
        if (eval.Classes != train.Classes || eval.TargetWidth != train.TargetWidth)
            throw new SpecException("$.data.eval", $"the eval data has {eval.Classes} classes ({eval.TargetWidth} targets) but the training data has {train.Classes} ({train.TargetWidth})");

        var initial = spec.Init.From is { } from ? LoadInitialState(spec, graph, Resolve(from, spec.BaseDirectory)) : InitialState(spec, graph);
        return new Plan(spec, graph, initial, train, eval, stepsPerEpoch, (int)total, evalBatchSize) { Memory = memory };
    }

    // Every tensor a backend allocates or returns has at most MaxTensorValues values, so 32-bit index arithmetic in
    // any backend cannot overflow: the largest are a batch's or an eval chunk's activations of the widest call, and the
    // merged eval-mode output of a call over the whole eval set.
    private static void CheckTensorSizes(ScenarioSpec spec, ModelGraph graph, int evalCount, int evalBatchSize)
    {
        var widest = graph.Calls.MaxBy(c => c.OutWidth)!;
        int width = Math.Max(widest.OutWidth, spec.Model.Inputs);
        string site = widest.OutWidth >= spec.Model.Inputs ? $"call '{widest.Id}' outputs" : "the model takes";
        void Check(string path, string what, long rows)
        {
            long values = rows * width;
            if (values > MaxTensorValues)
                throw new SpecException(path, $"{what} of {rows} samples makes a tensor of {rows} x {width} = {values} values ({site} {width}), "
                    + $"more than the limit of {MaxTensorValues} values per tensor");
        }
        Check("$.data.batchSize", "a training batch", spec.Data.BatchSize);
        Check(spec.Schedule.EvalBatchSize is null ? "$.data.batchSize" : "$.evaluation.batchSize", "an evaluation batch", Math.Min(evalBatchSize, evalCount));
        if (spec.Capture.Kinds.Contains(TensorKind.EvalOutput))
            Check(spec.Data.Eval is null ? "$.data.evalLimit" : "$.data.eval", "the captured eval-mode output", evalCount);
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
            // The trace's files are opened only when they are files: a named pipe would block the run forever.
            foreach (string file in new[] { "trace.json", "records.jsonl", "tensors.bin" })
                DataFile.RequireRegularIfPresent(Path.Combine(directory, file));
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

    // Samples and features from the spec or the IDX headers, without reading the data; IDX data is held to the
    // same limit as synthetic data.
    private static DataExtent Extent(DataSourceSpec source, ScenarioSpec spec, string path, int? limit)
    {
        switch (source)
        {
            case SyntheticSourceSpec s:
                return new DataExtent(Math.Min(s.Samples, limit ?? int.MaxValue), s.Features, SyntheticData.Origin(s),
                    MemoryEstimate.DataBytes(s.Samples, s.Features, fromFile: false));
            case IdxSourceSpec idx:
                var (images, labels) = IdxPaths(idx, spec);
                var (count, features) = ReadIdx(images, path, () => IdxReader.Shape(images, labels, Min(idx.Limit, limit)));
                if ((long)count * features > SpecLoader.MaxDataElements)
                    throw new SpecException(path, $"{images} holds {count} samples of {features} features, more than the limit of {SpecLoader.MaxDataElements} values; set 'limit'");
                return new DataExtent(count, features, images, MemoryEstimate.DataBytes(count, features, fromFile: true));
            case CsvSourceSpec csv:
                var layout = CsvLayout(csv, spec);
                var (rows, columns) = ReadIdx(layout.Path, path, () => CsvData.Shape(layout, Min(csv.Limit, limit)));
                return FileExtent(rows, columns, layout.Path, path);
            case NumpySourceSpec npy:
                var (samples, width) = ReadIdx(NumpyOrigin(npy, spec), path, () => NumpyShape(npy, spec, Min(npy.Limit, limit)));
                return FileExtent(samples, width, NumpyOrigin(npy, spec), path);
            default:
                throw new SpecException(path, $"unsupported data source '{source.Type}'");
        }
    }

    private static DataExtent FileExtent(int count, int features, string origin, string path)
    {
        if ((long)count * features > SpecLoader.MaxDataElements)
            throw new SpecException(path, $"{origin} holds {count} samples of {features} features, more than the limit of {SpecLoader.MaxDataElements} values; set 'limit'");
        return new DataExtent(count, features, origin, MemoryEstimate.DataBytes(count, features, fromFile: true));
    }

    // Classes: the model's output width; a file's labels must lie in 0..classes-1.
    private static DataSet LoadSource(DataSourceSpec source, ScenarioSpec spec, string path, int? limit, int classes)
    {
        switch (source)
        {
            case IdxSourceSpec idx:
                var (images, labels) = IdxPaths(idx, spec);
                int? count = Min(idx.Limit, limit);
                return ReadIdx(images, path, () => SharedDataSets.Load($"idx limit {count} normalize {idx.Normalize}", [images, labels],
                    () => IdxReader.Load(images, labels, count, idx.Normalize)));
            case CsvSourceSpec csv:
                var layout = CsvLayout(csv, spec);
                return ReadIdx(layout.Path, path, () => CsvData.Load(layout, Min(csv.Limit, limit), classes));
            case NumpySourceSpec npy:
                return ReadIdx(NumpyOrigin(npy, spec), path, () => LoadNumpy(npy, spec, Min(npy.Limit, limit), classes));
            default:
                return SyntheticData.Generate((SyntheticSourceSpec)source);
        }
    }

    private static CsvData.Layout CsvLayout(CsvSourceSpec csv, ScenarioSpec spec) =>
        new(Resolve(csv.Path, spec.BaseDirectory), csv.Label, csv.Features, csv.Separator);

    private static string NumpyOrigin(NumpySourceSpec npy, ScenarioSpec spec) =>
        npy.Archive is { } archive ? Resolve(archive, spec.BaseDirectory) : Resolve(npy.Inputs, spec.BaseDirectory);

    private static NpyArray ReadNumpy(NumpySourceSpec npy, ScenarioSpec spec, string member, bool shapeOnly) =>
        npy.Archive is { } archive
            ? NpyReader.ReadMember(Resolve(archive, spec.BaseDirectory), member, shapeOnly)
            : shapeOnly ? new NpyArray(NpyReader.ReadShape(Resolve(member, spec.BaseDirectory)), [], false) : NpyReader.Read(Resolve(member, spec.BaseDirectory));

    // Inputs [count, ...] (each sample flattened), labels [count] or [count, 1]: checked from the headers alone.
    private static (int Count, int Features) NumpyShape(NumpySourceSpec npy, ScenarioSpec spec, int? limit)
    {
        var inputs = ReadNumpy(npy, spec, npy.Inputs, shapeOnly: true).Shape;
        var labels = ReadNumpy(npy, spec, npy.Labels, shapeOnly: true).Shape;
        string inputsName = npy.Archive is null ? npy.Inputs : $"array '{npy.Inputs}'", labelsName = npy.Archive is null ? npy.Labels : $"array '{npy.Labels}'";
        if (inputs.Length < 2) throw new InvalidDataException($"{inputsName} has shape ({string.Join(", ", inputs)}); inputs need a sample axis and at least one feature axis, e.g. (count, features)");
        if (!(labels.Length == 1 || (labels.Length == 2 && labels[1] == 1)))
            throw new InvalidDataException($"{labelsName} has shape ({string.Join(", ", labels)}); labels need shape (count,) or (count, 1)");
        if (labels[0] != inputs[0]) throw new InvalidDataException($"{inputsName} holds {inputs[0]} samples but {labelsName} holds {labels[0]} labels");
        long features = 1;
        for (int d = 1; d < inputs.Length; d++) features *= inputs[d];
        if (features is 0 or > SpecLoader.MaxDataElements) throw new InvalidDataException($"{inputsName}: {features} features per sample is outside 1..{SpecLoader.MaxDataElements}");
        if (inputs[0] == 0) throw new InvalidDataException($"{inputsName} holds no samples");
        return (Math.Min(inputs[0], limit ?? int.MaxValue), (int)features);
    }

    private static DataSet LoadNumpy(NumpySourceSpec npy, ScenarioSpec spec, int? limit, int classes)
    {
        var (count, features) = NumpyShape(npy, spec, limit);
        var inputs = ReadNumpy(npy, spec, npy.Inputs, shapeOnly: false);
        var labels = ReadNumpy(npy, spec, npy.Labels, shapeOnly: false);
        if (!labels.Integral && labels.Values.Any(v => v != Math.Floor(v)))
            throw new InvalidDataException($"{npy.Labels}: labels must be class indices; found fractional values");
        return FileData.Create(inputs.Values.AsSpan(0, count * features), labels.Values.AsSpan(0, count), count, features, classes,
            NumpyOrigin(npy, spec), i => npy.Archive is null ? $"{npy.Labels} index {i}" : $"array '{npy.Labels}' index {i}");
    }

    private static (string Images, string Labels) IdxPaths(IdxSourceSpec idx, ScenarioSpec spec) =>
        (Resolve(idx.Images, spec.BaseDirectory), Resolve(idx.Labels, spec.BaseDirectory));

    private static T ReadIdx<T>(string images, string path, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
        {
            throw new SpecException(path, e.Message + FashionMnistHint(images));
        }
    }

    private static int? Min(int? a, int? b) => a is null ? b : b is null ? a : Math.Min(a.Value, b.Value);

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
