using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Comparison;

/// <summary>What a comparison judges, and so which noise it allows.</summary>
public enum ComparisonMode
{
    /// <summary>
    /// Two free-running trajectories: errors accumulate from step to step, so a tensor's envelope error is the worst seen
    /// so far (E(s)) and atol/rtol grow with the step.
    /// </summary>
    Trajectory,

    /// <summary>
    /// One step at a time from the same state (a step check): nothing accumulates, so a tensor is judged against the noise
    /// of that tensor at that step alone, with no growth, and tensors of earlier records are given, not inherited.
    /// </summary>
    StepCheck,
}

/// <summary>One tensor of an aligned record, judged: its metrics and the rule's verdict before any status is assigned.</summary>
/// <param name="At">Where.</param>
/// <param name="Metrics">Actual against expected (column-centered or kink-masked where the rules say).</param>
/// <param name="Judgement">Score, allowance and rule; null when the tensor is in one trace only.</param>
/// <param name="Present">The tensor present in one trace only, when <paramref name="Judgement"/> is null.</param>
public sealed record JudgedTensor(TensorAt At, TensorMetrics Metrics, Judgement? Judgement, Tensor? Present)
{
    /// <summary>The atol/rtol in force.</summary>
    public Tolerance? Tolerance { get; init; }

    /// <summary>The envelope error the allowance was taken from, when the envelope rule applied.</summary>
    public double? EnvelopeError { get; init; }

    /// <summary>True when both tensors were column-centered first.</summary>
    public bool Centered { get; init; }

    /// <summary>Output-gradient elements left out because the traces put the ReLU input on opposite sides of zero.</summary>
    public int KinkFlips { get; init; }

    /// <summary>Why the tensor is in one trace only.</summary>
    public string? MissingNote { get; init; }
}

/// <summary>
/// Judges the tensors of aligned records under a <see cref="TolerancePolicy"/>: preprocessing (column-centering where a
/// not-identifiable bias feeds batchnorm, ReLU kink masks), the envelope error of each tensor, and the policy's rules.
/// Holds the envelope state of one comparison (E(s) in <see cref="ComparisonMode.Trajectory"/>), so one judge serves one
/// comparison.
/// </summary>
public sealed class TensorJudge(TensorDependencies dependencies, TolerancePolicy policy, ComparisonMode mode)
{
    // Trajectory: the worst envelope error of each tensor so far. Step check: each tensor's noise window.
    private readonly Dictionary<TensorKey, double> _worstEnvelopeError = [];
    private readonly Dictionary<TensorKey, StepNoise> _stepNoise = [];

    // Step check: failures are confirmed against more draws until one is confirmed; later ones are judged as drawn.
    private bool _confirmAgain = true;

    /// <summary>Judges every tensor of <paramref name="records"/> in comparison order; tensors a side was not asked for are skipped.</summary>
    public IEnumerable<JudgedTensor> Judge(AlignedRecords records)
    {
        ArgumentNullException.ThrowIfNull(records);
        var expected = Index(records.Expected);
        var actual = Index(records.Actual);
        var envelopes = records.Envelopes.Select(Index).ToList();
        var judgedHere = new Dictionary<TensorKey, JudgedTensor>();
        Dictionary<TensorKey, (double Worst, int Draws)>? confirmation = null;
        Func<TensorKey, (double Worst, int Draws)>? confirm = mode == ComparisonMode.StepCheck && records.MoreDraws is { } more && _confirmAgain
            ? key => (confirmation ??= Confirmation(more, expected)).GetValueOrDefault(key)
            : null;
        foreach (var key in dependencies.Layout.InOrder(expected.Keys.Union(actual.Keys)))
        {
            var at = new TensorAt(records.Step, records.Phase, key);
            var te = expected.GetValueOrDefault(key);
            var ta = actual.GetValueOrDefault(key);
            JudgedTensor judged;
            if (te is not null && ta is not null)
            {
                judged = Judge(at, te, ta, expected, actual, envelopes, judgedHere, confirm);
            }
            else if (te is not null)
            {
                // A step one backend did not capture in full, or a kind it was not asked for (optimizer state of a backend
                // that does not report it), is not a failure; a wanted tensor it left out is.
                if (records.Actual is not null && (!Captured(records.Actual) || !actual.Keys.Any(k => k.Kind == key.Kind))) continue;
                judged = Missing(at, te, records.Actual is null ? $"the actual trace has no {Name(records.Phase)} record for step {records.Step}" : "absent from the actual trace");
            }
            else
            {
                if (records.Expected is not null && (!Captured(records.Expected) || !expected.Keys.Any(k => k.Kind == key.Kind))) continue;
                judged = Missing(at, ta, records.Expected is null ? $"the expected trace has no {Name(records.Phase)} record for step {records.Step}" : "absent from the expected trace");
            }
            judgedHere[key] = judged;
            yield return judged;
        }
    }

    private JudgedTensor Judge(TensorAt at, Tensor expectedTensor, Tensor actualTensor, Dictionary<TensorKey, Tensor> expected,
        Dictionary<TensorKey, Tensor> actual, List<Dictionary<TensorKey, Tensor>> envelopes, Dictionary<TensorKey, JudgedTensor> judgedHere,
        Func<TensorKey, (double Worst, int Draws)>? confirm)
    {
        var key = at.Key;
        var original = expectedTensor;
        bool centered = dependencies.IsCentered(key);
        if (centered)
        {
            expectedTensor = TraceComparer.Center(expectedTensor);
            actualTensor = TraceComparer.Center(actualTensor);
        }
        int kinkFlips = 0;
        if (KinkMask(key, expected, actual) is { } kink && kink.Length == expectedTensor.Length && kink.Length == actualTensor.Length)
        {
            kinkFlips = kink.Count(flipped => flipped);
            expectedTensor = Masked(expectedTensor, kink);
            actualTensor = Masked(actualTensor, kink);
        }
        double rms = TensorMetrics.Rms(expectedTensor.Data);
        int growthStep = mode == ComparisonMode.StepCheck ? 0 : at.Step;
        var tolerance = policy.ToleranceAt(key.Kind, growthStep, actualTensor.DType, expectedTensor.DType, rms);
        var metrics = TensorMetrics.Of(actualTensor, expectedTensor, tolerance);
        double resolution = mode == ComparisonMode.StepCheck ? TolerancePolicy.Resolution(expectedTensor, actualTensor.DType) : 0;

        double? envelopeError = null;
        Judgement judgement;
        if (!TolerancePolicy.UsesEnvelope(key.Kind, actualTensor.DType, expectedTensor.DType))
        {
            judgement = policy.Judge(metrics, tolerance, null, mode, resolution);
        }
        else if (mode == ComparisonMode.Trajectory)
        {
            var (here, _) = WorstEnvelopeError(key, original, expected, envelopes, tolerance);
            envelopeError = TolerancePolicy.TrajectoryEnvelopeError(here, _worstEnvelopeError.TryGetValue(key, out double worst) ? worst : null);
            if (envelopeError is double kept) _worstEnvelopeError[key] = kept;
            judgement = policy.Judge(metrics, tolerance, envelopeError, mode, resolution);
        }
        else
        {
            var (here, draws) = WorstEnvelopeError(key, original, expected, envelopes, tolerance);
            // Keyed by tensor and phase: a train step's noise does not set an eval record's.
            var noiseKey = at.Phase == RecordPhase.Eval ? key with { Site = key.Site + "@eval" } : key;
            if (!_stepNoise.TryGetValue(noiseKey, out var noise)) _stepNoise[noiseKey] = noise = new StepNoise();
            envelopeError = noise.Estimate(here, rms);
            judgement = policy.Judge(metrics, tolerance, envelopeError, mode, resolution);
            if (!judgement.Passed && here is not null && confirm is not null)
            {
                // Confirm a failure against more draws of this very step before believing it: a few draws underestimate
                // the rounding of a small tensor by chance.
                var (more, moreDraws) = confirm(key);
                here = Math.Max(here.Value, more);
                draws += moreDraws;
                envelopeError = noise.Estimate(here, rms);
                judgement = policy.Judge(metrics, tolerance, envelopeError, mode, resolution);
                if (!judgement.Passed) _confirmAgain = false;
            }
            if (here is double h) noise.Add(h, rms, draws);
        }
        if (key.Kind is TensorKind.TrainAccuracy or TensorKind.EvalAccuracy && dependencies.LogitsOf(key) is { } accuracyLogits
            && expected.TryGetValue(accuracyLogits, out var expectedLogits) && actual.TryGetValue(accuracyLogits, out var actualLogits)
            && TolerancePolicy.AccuracyAllowanceFromLogits(expectedLogits, actualLogits) is double accuracyAllowance)
        {
            judgement = TolerancePolicy.JudgeAccuracy(metrics, accuracyAllowance);
        }
        else if (key.Kind is TensorKind.Loss or TensorKind.EvalLoss && dependencies.LogitsOf(key) is { } logits
            && judgedHere.TryGetValue(logits, out var logitsJudged) && logitsJudged.Judgement is { Passed: true })
        {
            judgement = TolerancePolicy.WithLogitsAllowance(judgement, metrics, logitsJudged.Metrics.Rmse, dependencies.Classes);
        }
        return new JudgedTensor(at, metrics, judgement, null)
        {
            Tolerance = tolerance,
            EnvelopeError = envelopeError,
            Centered = centered,
            KinkFlips = kinkFlips,
        };
    }

    // The worst RMSE over the envelopes of a tensor against the expected one (each with its own kink flips left out,
    // column-centered where the tensor is), and how many envelopes had it; a non-finite envelope says nothing.
    private (double? Worst, int Draws) WorstEnvelopeError(TensorKey key, Tensor expectedTensor, Dictionary<TensorKey, Tensor> expected,
        IEnumerable<Dictionary<TensorKey, Tensor>> envelopes, Tolerance tolerance)
    {
        double? worst = null;
        int draws = 0;
        foreach (var envelope in envelopes)
        {
            if (!envelope.TryGetValue(key, out var value) || !value.SameShape(expectedTensor)) continue;
            var against = expectedTensor;
            if (KinkMask(key, expected, envelope) is { } own && own.Length == value.Length)
            {
                value = Masked(value, own);
                against = Masked(against, own);
            }
            if (dependencies.IsCentered(key))
            {
                value = TraceComparer.Center(value);
                against = TraceComparer.Center(against);
            }
            double rmse = TensorMetrics.Of(value, against, tolerance).Rmse;
            if (!double.IsFinite(rmse)) continue;
            worst = Math.Max(rmse, worst ?? 0);
            draws++;
        }
        return (worst, draws);
    }

    // Every tensor's worst error over ConfirmationDraws more draws of one step, drawn one at a time.
    private Dictionary<TensorKey, (double Worst, int Draws)> Confirmation(Func<int, IEnumerable<StepRecord>> more, Dictionary<TensorKey, Tensor> expected)
    {
        var worst = new Dictionary<TensorKey, (double Worst, int Draws)>();
        foreach (var draw in more(TolerancePolicy.ConfirmationDraws))
        {
            var envelope = Index(draw);
            foreach (var (key, value) in expected)
            {
                var tolerance = policy.ToleranceAt(key.Kind, 0, DType.Float32, value.DType, TensorMetrics.Rms(value.Data));
                if (WorstEnvelopeError(key, value, expected, [envelope], tolerance) is not (double error, _)) continue;
                var (w, n) = worst.GetValueOrDefault(key);
                worst[key] = (Math.Max(w, error), n + 1);
            }
        }
        return worst;
    }

    private static JudgedTensor Missing(TensorAt at, Tensor? present, string note) =>
        new(at, TensorMetrics.Absent(present), null, present) { MissingNote = note };

    // Elements where the expected and the other record's forward outputs of a kinked activation's input fall on opposite sides of
    // zero; null when the tensor is not such an output gradient, a forward output is not captured, or nothing flipped.
    private bool[]? KinkMask(TensorKey key, Dictionary<TensorKey, Tensor> expected, Dictionary<TensorKey, Tensor> other)
    {
        if (dependencies.KinkSource(key) is not { } site) return null;
        var forward = new TensorKey(TensorKind.Forward, site);
        if (!expected.TryGetValue(forward, out var fe) || !other.TryGetValue(forward, out var fa) || !fe.SameShape(fa)) return null;
        var mask = new bool[fe.Length];
        bool any = false;
        for (int i = 0; i < mask.Length; i++) any |= mask[i] = fe.Data[i] > 0 != fa.Data[i] > 0;
        return any ? mask : null;
    }

    private static Tensor Masked(Tensor t, bool[] mask)
    {
        var data = (double[])t.Data.Clone();
        for (int i = 0; i < data.Length; i++)
            if (mask[i]) data[i] = 0;
        return new Tensor(t.Shape, data, t.DType);
    }

    private static Dictionary<TensorKey, Tensor> Index(StepRecord? record)
    {
        var map = new Dictionary<TensorKey, Tensor>();
        if (record is null) return map;
        foreach (var entry in record.Entries) map.TryAdd(entry.Key, entry.Value);
        return map;
    }

    /// <summary>True when a record holds more than the scalars every step records (a captured step, or the state before one).</summary>
    public static bool Captured(StepRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return record.Phase == RecordPhase.Initial || record.Entries.Any(e => !TensorKinds.AlwaysRecorded.Contains(e.Key.Kind));
    }

    private static string Name(RecordPhase phase) => phase.ToString().ToLowerInvariant();
}
