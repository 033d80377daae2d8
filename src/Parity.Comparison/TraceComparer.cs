using Parity.Backends;
using Parity.Models;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Comparison;

/// <summary>
/// Compares two traces tensor by tensor under a <see cref="TolerancePolicy"/> and localizes the first
/// divergence (origin or inherited, by the rules of <see cref="TensorDependencies"/>). Both traces are
/// streamed record by record: memory holds one step of tensors plus one small <see cref="TensorCheck"/> per
/// tensor compared.
/// </summary>
public static class TraceComparer
{
    /// <summary>Compares <paramref name="actual"/> against <paramref name="expected"/>.</summary>
    /// <param name="expected">The trace judged correct (usually the float64 reference).</param>
    /// <param name="actual">The trace under test.</param>
    /// <param name="graph">The model both traces ran.</param>
    /// <param name="policy">Tolerances.</param>
    /// <param name="envelope">
    /// The float32 reference's trace: float32 tensors are judged against a multiple of its error against
    /// <paramref name="expected"/>. Ignored when it is <paramref name="actual"/> or <paramref name="expected"/> itself
    /// (a trace cannot be its own envelope: the atol/rtol rule judges it instead).
    /// </param>
    /// <param name="declared">
    /// Convention mismatches that explain failures of the kinds they name; when null, those declared in both
    /// trace headers.
    /// </param>
    public static ComparisonResult Compare(ITrace expected, ITrace actual, ModelGraph graph, TolerancePolicy policy,
        ITrace? envelope = null, IReadOnlyList<ConventionMismatch>? declared = null) =>
        Compare(expected, actual, graph, policy, envelope is null ? [] : [envelope], declared);

    /// <summary>
    /// Compares <paramref name="actual"/> against <paramref name="expected"/> with several envelope traces: independent
    /// float32 trajectories of the same math (e.g. the float32 reference and its batch-permuted twin). A tensor's
    /// envelope error is the largest over them, so one trajectory's lucky cancellation on a scalar such as the loss
    /// does not set the bound. Envelopes that are <paramref name="actual"/> or <paramref name="expected"/> are ignored.
    /// </summary>
    /// <param name="expected">The trace judged correct.</param>
    /// <param name="actual">The trace under test.</param>
    /// <param name="graph">The model both traces ran.</param>
    /// <param name="policy">Tolerances.</param>
    /// <param name="envelopes">Envelope traces (possibly none).</param>
    /// <param name="declared">Declared convention mismatches; when null, those of both trace headers.</param>
    public static ComparisonResult Compare(ITrace expected, ITrace actual, ModelGraph graph, TolerancePolicy policy,
        IReadOnlyList<ITrace> envelopes, IReadOnlyList<ConventionMismatch>? declared = null)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(envelopes);
        var usable = envelopes.Where(v => !SameDirectory(v, actual) && !SameDirectory(v, expected)).ToList();
        var mismatches = declared ?? actual.Header.Mismatches.Concat(expected.Header.Mismatches)
            .DistinctBy(m => (m.Setting, m.Spec, m.Backend, string.Join(",", m.Affects))).ToList();
        return new Comparison(expected, actual, new TensorDependencies(graph), policy, usable, mismatches).Run();
    }

    private static bool SameDirectory(ITrace a, ITrace b) =>
        ReferenceEquals(a, b) || (a is TraceReader ra && b is TraceReader rb
            && string.Equals(Path.GetFullPath(ra.Directory).TrimEnd(Path.DirectorySeparatorChar), Path.GetFullPath(rb.Directory).TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal));

    /// <summary>Column-centers a [rows, columns] tensor: what a following batchnorm sees of it.</summary>
    internal static Tensor Center(Tensor t)
    {
        if (t.Shape.Length != 2 || t.Shape[0] == 0) return t;
        int rows = t.Shape[0], cols = t.Shape[1];
        var means = new double[cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) means[c] += t.Data[r * cols + c];
        for (int c = 0; c < cols; c++) means[c] /= rows;
        var data = new double[t.Data.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) data[r * cols + c] = t.Data[r * cols + c] - means[c];
        return new Tensor((int[])t.Shape.Clone(), data, t.DType);
    }

    private sealed class Comparison(ITrace expected, ITrace actual, TensorDependencies dependencies, TolerancePolicy policy,
        IReadOnlyList<ITrace> envelopes, IReadOnlyList<ConventionMismatch> mismatches)
    {
        private static readonly HashSet<TensorKind> Scalars = [TensorKind.Loss, TensorKind.TrainAccuracy, TensorKind.EvalLoss, TensorKind.EvalAccuracy];

        private readonly List<TensorCheck> _checks = [];
        private readonly Dictionary<TensorAt, TensorCheck> _byPlace = [];
        private readonly Dictionary<TensorKey, double> _envelopeError = [];
        private readonly List<string> _notIdentifiable = [];
        private readonly HashSet<TensorAt> _tainted = [];

        // Tensors computed, directly or through others, from a ReLU kink flip: the trajectories separated there.
        private readonly HashSet<TensorAt> _kinkTainted = [];
        private bool _kinkSeparated;
        private Divergence? _first;
        private int _steps;
        private readonly List<(IEnumerator<StepRecord> Records, StepRecord? Current)> _envelopes = [];
        private Dictionary<TensorKey, Tensor> _expectedRecord = [];
        private Dictionary<TensorKey, Tensor> _actualRecord = [];

        public ComparisonResult Run()
        {
            string? message = Problem(actual, "actual") ?? Problem(expected, "expected");
            foreach (var envelope in envelopes)
            {
                var records = envelope.Records().GetEnumerator();
                _envelopes.Add((records, Advance(records)));
            }
            try
            {
                CompareAll();
            }
            finally
            {
                foreach (var (records, _) in _envelopes) records.Dispose();
            }

            int failed = _checks.Count(c => c.CountsAsFailure);
            var verdict = message is not null ? Verdict.Error : failed > 0 ? Verdict.Diverge : Verdict.Agree;
            if (message is null && _checks.FirstOrDefault(c => c.Status == CheckStatus.KinkInherited) is { } kinked)
            {
                message = $"{_checks.Count(c => c.Status == CheckStatus.KinkInherited)} tensor(s) exceed the noise envelope only downstream of "
                    + $"ReLU kink flips (values within rounding of zero on opposite sides), first {kinked.Key} at step {kinked.Step}: not counted";
            }
            return new ComparisonResult(expected.Header.Backend, actual.Header.Backend, verdict, message, _first, _steps,
                _checks.Count(c => c.Status != CheckStatus.Missing), failed, _checks, _notIdentifiable)
            {
                Envelope = envelopes.Count == 0 ? null : string.Join("+", envelopes.Select(v => v.Header.Backend)),
                Policy = policy.Describe(),
                Mismatches = mismatches,
            };
        }

        private void CompareAll()
        {
            using (var e = expected.Records().GetEnumerator())
            using (var a = actual.Records().GetEnumerator())
            {
                var ce = Advance(e);
                var ca = Advance(a);
                while (ce is not null || ca is not null)
                {
                    int order = ce is null ? 1 : ca is null ? -1 : Order(ce).CompareTo(Order(ca));
                    if (order == 0)
                    {
                        CompareRecords(ce!.Step, ce.Phase, ce, ca);
                        ce = Advance(e);
                        ca = Advance(a);
                    }
                    else if (order < 0)
                    {
                        // The actual trace lacks this record. If it did not finish, the error verdict says why.
                        if (ca is null && actual.Header.Status != "completed") break;
                        CompareRecords(ce!.Step, ce.Phase, ce, null);
                        ce = Advance(e);
                    }
                    else
                    {
                        if (ce is null && expected.Header.Status != "completed") break;
                        CompareRecords(ca!.Step, ca.Phase, null, ca);
                        ca = Advance(a);
                    }
                }
            }
        }

        private static string? Problem(ITrace trace, string role) => trace.Header.Status switch
        {
            "completed" => null,
            "running" => $"the {role} trace ({trace.Header.Backend}) did not finish (status running)",
            string status => role == "actual"
                ? trace.Header.Message ?? $"{trace.Header.Backend}: {status}"
                : $"the expected trace ({trace.Header.Backend}) {status}: {trace.Header.Message ?? "no message"}",
        };

        private static StepRecord? Advance(IEnumerator<StepRecord>? records) => records is not null && records.MoveNext() ? records.Current : null;

        private static (int Step, int Phase) Order(StepRecord r) => (r.Step, (int)r.Phase);

        private static bool Captured(StepRecord r) => r.Phase == RecordPhase.Initial || r.Entries.Any(e => !Scalars.Contains(e.Key.Kind));

        // Each envelope's record for (step, phase), advancing each stream past earlier records.
        private List<StepRecord> EnvelopesFor(int step, RecordPhase phase)
        {
            var found = new List<StepRecord>();
            for (int i = 0; i < _envelopes.Count; i++)
            {
                var (records, current) = _envelopes[i];
                while (current is not null && Order(current).CompareTo((step, (int)phase)) < 0) current = Advance(records);
                _envelopes[i] = (records, current);
                if (current is not null && Order(current) == (step, (int)phase)) found.Add(current);
            }
            return found;
        }

        private void CompareRecords(int step, RecordPhase phase, StepRecord? e, StepRecord? a)
        {
            if (e is not null && a is not null && phase == RecordPhase.Train) _steps++;
            var expectedTensors = Index(e);
            var actualTensors = Index(a);
            _expectedRecord = expectedTensors;
            _actualRecord = actualTensors;
            var envelopeTensors = EnvelopesFor(step, phase).Select(Index).ToList();
            foreach (var key in dependencies.InOrder(expectedTensors.Keys.Union(actualTensors.Keys)))
            {
                var at = new TensorAt(step, phase, key);
                var te = expectedTensors.GetValueOrDefault(key);
                var ta = actualTensors.GetValueOrDefault(key);
                if (te is not null && ta is not null)
                {
                    Add(Judge(at, te, ta, envelopeTensors.Where(v => v.ContainsKey(key)).Select(v => (v[key], v)).ToList()));
                }
                else if (te is not null)
                {
                    // A step one backend did not capture in full is not a failure; a wanted tensor it left out is.
                    if (a is not null && !Captured(a)) continue;
                    Add(MissingCheck(at, te, a is null ? $"the actual trace has no {phase.ToString().ToLowerInvariant()} record for step {step}" : "absent from the actual trace"));
                }
                else
                {
                    // A backend may return more kinds than were asked for; only a site missing beside its kind's others counts.
                    if (e is not null && (!Captured(e) || !expectedTensors.Keys.Any(k => k.Kind == key.Kind))) continue;
                    Add(MissingCheck(at, ta, e is null ? $"the expected trace has no {phase.ToString().ToLowerInvariant()} record for step {step}" : "absent from the expected trace"));
                }
            }
        }

        private static Dictionary<TensorKey, Tensor> Index(StepRecord? record)
        {
            var map = new Dictionary<TensorKey, Tensor>();
            if (record is null) return map;
            foreach (var entry in record.Entries) map.TryAdd(entry.Key, entry.Value);
            return map;
        }

        private static TensorCheck MissingCheck(TensorAt at, Tensor? present, string note) =>
            new(at.Step, at.Phase, at.Key, TensorMetrics.Absent(present), false, double.PositiveInfinity, CheckStatus.Missing)
            {
                Rule = JudgementRule.Missing,
                Allowed = double.NaN,
                Note = note,
            };

        // Elements where expected and actual forward outputs of the ReLU's input fall on opposite sides of zero; null
        // when the tensor is not such an output gradient, a forward output is not captured, or nothing flipped.
        private bool[]? KinkMask(TensorKey key, Dictionary<TensorKey, Tensor> other)
        {
            if (dependencies.ReluMaskSource(key) is not { } site) return null;
            var forward = new TensorKey(TensorKind.Forward, site);
            if (!_expectedRecord.TryGetValue(forward, out var fe) || !other.TryGetValue(forward, out var fa) || !fe.SameShape(fa)) return null;
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

        private TensorCheck Judge(TensorAt at, Tensor expectedTensor, Tensor actualTensor,
            IReadOnlyList<(Tensor Value, Dictionary<TensorKey, Tensor> Record)> envelopes)
        {
            // Each envelope is judged against the expected trace with its own kink flips left out.
            var envelopeTensors = envelopes.Select(v => KinkMask(at.Key, v.Record) is { } own && own.Length == v.Value.Length
                ? (Value: Masked(v.Value, own), Expected: Masked(expectedTensor, own))
                : (v.Value, Expected: expectedTensor)).ToList();
            var kind = at.Key.Kind;
            bool centered = dependencies.IsCentered(at.Key);
            if (centered)
            {
                expectedTensor = Center(expectedTensor);
                actualTensor = Center(actualTensor);
                envelopeTensors = envelopeTensors.Select(v => (Center(v.Value), Center(v.Expected))).ToList();
            }
            int kinkFlips = 0;
            if (KinkMask(at.Key, _actualRecord) is { } kink && kink.Length == expectedTensor.Length && kink.Length == actualTensor.Length)
            {
                kinkFlips = kink.Count(flipped => flipped);
                expectedTensor = Masked(expectedTensor, kink);
                actualTensor = Masked(actualTensor, kink);
            }
            double rms = TensorMetrics.Rms(expectedTensor.Data);
            var tolerance = policy.ToleranceAt(kind, at.Step, actualTensor.DType, expectedTensor.DType, rms);
            var metrics = TensorMetrics.Of(actualTensor, expectedTensor, tolerance);

            double? envelopeError = null;
            if (policy.UsesEnvelope(kind, actualTensor.DType, expectedTensor.DType))
            {
                foreach (var (envelopeTensor, envelopeExpected) in envelopeTensors.Where(v => v.Value.SameShape(v.Expected)))
                {
                    double rmse = TensorMetrics.Of(envelopeTensor, envelopeExpected, tolerance).Rmse;
                    // E(s): the worst rounding any float32 envelope showed on this tensor so far. Growth is expected
                    // and kept; a dip at one step does not tighten the bound. A non-finite envelope says nothing.
                    if (double.IsFinite(rmse)) _envelopeError[at.Key] = Math.Max(rmse, _envelopeError.GetValueOrDefault(at.Key));
                }
                if (_envelopeError.TryGetValue(at.Key, out double worst)) envelopeError = worst;
            }
            var judgement = policy.Judge(metrics, tolerance, envelopeError);
            if (kind is TensorKind.TrainAccuracy or TensorKind.EvalAccuracy && dependencies.LogitsOf(at.Key) is { } accuracyLogits
                && _expectedRecord.TryGetValue(accuracyLogits, out var expectedLogits) && _actualRecord.TryGetValue(accuracyLogits, out var actualLogits)
                && TolerancePolicy.AccuracyAllowanceFromLogits(expectedLogits, actualLogits) is double accuracyAllowance)
            {
                judgement = TolerancePolicy.JudgeAccuracy(metrics, accuracyAllowance);
            }
            else if (kind is TensorKind.Loss or TensorKind.EvalLoss && dependencies.LogitsOf(at.Key) is { } logits
                && _byPlace.TryGetValue(new TensorAt(at.Step, at.Phase, logits), out var logitsCheck)
                && logitsCheck.Passed && double.IsFinite(judgement.Score))
            {
                double implied = TolerancePolicy.LossAllowanceFromLogits(logitsCheck.Metrics.Rmse, dependencies.Classes);
                if (implied > judgement.Allowed) judgement = judgement with { Score = metrics.Rmse / implied, Allowed = implied };
            }

            var status = CheckStatus.Checked;
            string? note = null;
            bool tainted = false;
            if (dependencies.IsNotIdentifiable(at.Key))
            {
                status = CheckStatus.NotIdentifiable;
                note = "the loss does not depend on it: a linear bias feeding batchnorm (docs/tolerances.md#not-identifiable-tensors)";
            }
            else if (!judgement.Passed && Explaining(kind).Count > 0)
            {
                status = CheckStatus.ExplainedByMismatch;
                note = "declared convention mismatch: " + string.Join(", ", Explaining(kind));
            }
            else if (!judgement.Passed && Classify(at) is { Failed.Count: 0 } fromKink
                && (fromKink.Kinked.Count > 0 || (fromKink.Unknown.Count > 0 && _kinkSeparated)))
            {
                // Behind a ReLU kink flip the backward pass carries the flipped element on (batchnorm's backward
                // spreads it over its column, a weight gradient sums it in, the update moves the weight, later steps
                // start from it): the trajectories separated at rounding of the kink, and what follows is inherited.
                status = CheckStatus.KinkInherited;
                // Upstream not captured at this step, after the trajectories separated at a kink: nothing in the traces
                // points anywhere else.
                note = fromKink.Kinked.Count > 0
                    ? "failing only downstream of ReLU kink flips at " + string.Join(", ", fromKink.Kinked)
                    : "upstream not captured at this step; the trajectories separated at a ReLU kink flip earlier";
            }
            else if (at.Phase == RecordPhase.Eval)
            {
                // Eval outputs read the running mean, which carries a not-identifiable bias's history. That history
                // flows down the eval pass (a tainted output may pass its own tolerance while the loss after it does
                // not); a failure whose failing inputs are all such tensors, directly or through tainted ones that
                // passed, is that history, not an error.
                var upstream = Classify(at);
                tainted = upstream.NotIdentifiableFailed.Count > 0 || upstream.Tainted.Count > 0;
                if (tainted) _tainted.Add(at);
                if (!judgement.Passed && tainted && upstream.Failed.Count == 0)
                {
                    status = CheckStatus.NotIdentifiable;
                    var sources = upstream.NotIdentifiableFailed.Concat(upstream.Tainted).Distinct();
                    note = "failing only through not-identifiable upstream: " + string.Join(", ", sources);
                }
            }
            return new TensorCheck(at.Step, at.Phase, at.Key, metrics, judgement.Passed, judgement.Score, status)
            {
                Rule = judgement.Rule,
                Allowed = judgement.Allowed,
                Tolerance = tolerance,
                EnvelopeError = envelopeError,
                Centered = centered,
                KinkFlips = kinkFlips,
                Note = kinkFlips == 0 ? note
                    : $"{kinkFlips} element(s) left out: the two traces put forward:{at.Key.Site} on opposite sides of the ReLU kink there"
                        + (note is null ? "" : "; " + note),
                ThroughNotIdentifiable = tainted,
            };
        }

        private List<string> Explaining(TensorKind kind) =>
            mismatches.Where(m => m.Affects.Any(a => string.Equals(a, kind.Name(), StringComparison.OrdinalIgnoreCase))).Select(m => m.Setting).Distinct().ToList();

        private void Add(TensorCheck check)
        {
            if (!check.Passed)
            {
                var u = Classify(check.At);
                check = check with { IsOrigin = u.Failed.Count == 0 && u.Unknown.Count == 0 };
            }
            _checks.Add(check);
            _byPlace[check.At] = check;
            if (check.KinkFlips > 0 || check.Status == CheckStatus.KinkInherited || Classify(check.At).Kinked.Count > 0) _kinkTainted.Add(check.At);
            _kinkSeparated |= check.Status == CheckStatus.KinkInherited;
            if (check.Status == CheckStatus.NotIdentifiable && !_notIdentifiable.Contains(check.Key.ToString())) _notIdentifiable.Add(check.Key.ToString());
            if (_first is null && check.CountsAsFailure)
            {
                var upstream = Classify(check.At);
                _first = new Divergence(check, upstream.Failed.Count == 0 && upstream.Unknown.Count == 0, upstream.Passed, upstream.Unknown,
                    check.Status == CheckStatus.ExplainedByMismatch ? Explaining(check.Key.Kind) : [])
                {
                    UpstreamFailed = upstream.Failed,
                    UpstreamNotIdentifiable = upstream.NotIdentifiable,
                };
            }
        }

        private Upstream Classify(TensorAt at)
        {
            var result = new Upstream([], [], [], [], [], [], []);
            foreach (var u in dependencies.Upstream(at))
            {
                if (!_byPlace.TryGetValue(u, out var c) || c.Status == CheckStatus.Missing) result.Unknown.Add(u.Key);
                else if (c.Status == CheckStatus.NotIdentifiable)
                {
                    result.NotIdentifiable.Add(u.Key);
                    if (!c.Passed) result.NotIdentifiableFailed.Add(u.Key);
                }
                else if (c.Status == CheckStatus.KinkInherited) result.Kinked.Add(u.Key);
                else if (c.Passed)
                {
                    result.Passed.Add(u.Key);
                    if (_tainted.Contains(u)) result.Tainted.Add(u.Key);
                    if (_kinkTainted.Contains(u)) result.Kinked.Add(u.Key);
                }
                else result.Failed.Add(u.Key);
            }
            return result;
        }

        private sealed record Upstream(List<TensorKey> Passed, List<TensorKey> Unknown, List<TensorKey> Failed,
            List<TensorKey> NotIdentifiable, List<TensorKey> NotIdentifiableFailed, List<TensorKey> Tainted, List<TensorKey> Kinked);
    }
}
