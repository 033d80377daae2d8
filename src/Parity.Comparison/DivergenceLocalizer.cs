using Parity.Backends;
using Parity.Tracing;

namespace Parity.Comparison;

/// <summary>
/// Turns judged tensors into checks with a status (counted, not identifiable, explained by a declared mismatch,
/// inherited from a ReLU kink flip, missing) and finds the first divergence with its origin, by the dependency rules of
/// <see cref="TensorDependencies"/>. Feed it the judged tensors of a comparison in order.
/// </summary>
/// <param name="dependencies">What every tensor is computed from.</param>
/// <param name="mismatches">Declared convention mismatches whose affected kinds are explained, not counted.</param>
/// <param name="mode">
/// In <see cref="ComparisonMode.StepCheck"/> a record starts from the actual backend's own earlier state: tensors of
/// other records are given, so nothing is inherited across records.
/// </param>
public sealed class DivergenceLocalizer(TensorDependencies dependencies, IReadOnlyList<ConventionMismatch> mismatches, ComparisonMode mode)
{
    private readonly List<TensorCheck> _checks = [];
    private readonly Dictionary<TensorAt, TensorCheck> _byPlace = [];
    private readonly List<string> _notIdentifiable = [];
    private readonly HashSet<TensorAt> _tainted = [];

    // Kinds that were compared at all: an upstream tensor of a kind one trace never holds (optimizer state a backend does
    // not report) is neither evidence for nor against an origin.
    private readonly HashSet<TensorKind> _comparedKinds = [];

    // Tensors computed, directly or through others, from a ReLU kink flip: the trajectories separated there.
    private readonly HashSet<TensorAt> _kinkTainted = [];
    private bool _kinkSeparated;

    /// <summary>Every check so far, in comparison order.</summary>
    public IReadOnlyList<TensorCheck> Checks => _checks;

    /// <summary>Keys (kind:site) kept out of the verdict as not identifiable.</summary>
    public IReadOnlyList<string> NotIdentifiable => _notIdentifiable;

    /// <summary>The first counted failure, or null.</summary>
    public Divergence? First { get; private set; }

    /// <summary>Assigns a status to <paramref name="judged"/>, records the check and updates the first divergence.</summary>
    public TensorCheck Add(JudgedTensor judged)
    {
        ArgumentNullException.ThrowIfNull(judged);
        _comparedKinds.Add(judged.At.Key.Kind);
        var check = judged.Judgement is null ? MissingCheck(judged) : Checked(judged);
        if (!check.Passed)
        {
            var u = Classify(check.At);
            check = check with { IsOrigin = u.Failed.Count == 0 && u.Unknown.Count == 0 };
        }
        _checks.Add(check);
        _byPlace[check.At] = check;
        if (check.KinkFlips > 0 || check.Status == CheckStatus.KinkInherited || Classify(check.At).Kinked.Count > 0) _kinkTainted.Add(check.At);
        _kinkSeparated |= check.Status == CheckStatus.KinkInherited && mode == ComparisonMode.Trajectory;
        if (check.Status == CheckStatus.NotIdentifiable && !_notIdentifiable.Contains(check.Key.ToString())) _notIdentifiable.Add(check.Key.ToString());
        if (First is null && check.CountsAsFailure)
        {
            var upstream = Classify(check.At);
            First = new Divergence(check, upstream.Failed.Count == 0 && upstream.Unknown.Count == 0, upstream.Passed, upstream.Unknown,
                check.Status == CheckStatus.ExplainedByMismatch ? Explaining(check.Key.Kind) : [])
            {
                UpstreamFailed = upstream.Failed,
                UpstreamNotIdentifiable = upstream.NotIdentifiable,
            };
        }
        return check;
    }

    private static TensorCheck MissingCheck(JudgedTensor judged) =>
        new(judged.At.Step, judged.At.Phase, judged.At.Key, judged.Metrics, false, double.PositiveInfinity, CheckStatus.Missing)
        {
            Rule = JudgementRule.Missing,
            Allowed = double.NaN,
            Note = judged.MissingNote,
        };

    private TensorCheck Checked(JudgedTensor judged)
    {
        var at = judged.At;
        var judgement = judged.Judgement!;
        var status = CheckStatus.Checked;
        string? note = null;
        bool tainted = false;
        if (dependencies.IsNotIdentifiable(at.Key))
        {
            status = CheckStatus.NotIdentifiable;
            note = "the loss does not depend on it: a linear bias feeding batchnorm (docs/tolerances.md#not-identifiable-tensors)";
        }
        else if (!judgement.Passed && Explaining(at.Key.Kind).Count > 0)
        {
            status = CheckStatus.ExplainedByMismatch;
            note = "declared convention mismatch: " + string.Join(", ", Explaining(at.Key.Kind));
        }
        else if (!judgement.Passed && Classify(at) is { Failed.Count: 0 } fromKink
            && (fromKink.Kinked.Count > 0 || (fromKink.Unknown.Count > 0 && _kinkSeparated)))
        {
            // Behind a ReLU kink flip the backward pass carries the flipped element on (batchnorm's backward spreads it
            // over its column, a weight gradient sums it in, the update moves the weight; on a trajectory, later steps
            // start from it): the runs separated at rounding of the kink, and what follows is inherited.
            status = CheckStatus.KinkInherited;
            note = fromKink.Kinked.Count > 0
                ? "failing only downstream of ReLU kink flips at " + string.Join(", ", fromKink.Kinked)
                : "upstream not captured at this step; the trajectories separated at a ReLU kink flip earlier";
        }
        else if (at.Phase == RecordPhase.Eval)
        {
            // Eval outputs read the running mean, which carries a not-identifiable bias's history. That history flows down
            // the eval pass (a tainted output may pass its own tolerance while the loss after it does not); a failure whose
            // failing inputs are all such tensors, directly or through tainted ones that passed, is that history, not an error.
            var upstream = Classify(at);
            tainted = upstream.NotIdentifiableFailed.Count > 0 || upstream.Tainted.Count > 0;
            if (tainted) _tainted.Add(at);
            if (!judgement.Passed && tainted && upstream.Failed.Count == 0)
            {
                status = CheckStatus.NotIdentifiable;
                note = "failing only through not-identifiable upstream: " + string.Join(", ", upstream.NotIdentifiableFailed.Concat(upstream.Tainted).Distinct());
            }
        }
        return new TensorCheck(at.Step, at.Phase, at.Key, judged.Metrics, judgement.Passed, judgement.Score, status)
        {
            Rule = judgement.Rule,
            Allowed = judgement.Allowed,
            Tolerance = judged.Tolerance,
            EnvelopeError = judged.EnvelopeError,
            Centered = judged.Centered,
            KinkFlips = judged.KinkFlips,
            Note = judged.KinkFlips == 0 ? note
                : $"{judged.KinkFlips} element(s) left out: the two traces put forward:{at.Key.Site} on opposite sides of the ReLU kink there"
                    + (note is null ? "" : "; " + note),
            ThroughNotIdentifiable = tainted,
        };
    }

    private List<string> Explaining(TensorKind kind) =>
        mismatches.Where(m => m.Affects.Any(a => string.Equals(a, kind.Name(), StringComparison.OrdinalIgnoreCase))).Select(m => m.Setting).Distinct().ToList();

    private Upstream Classify(TensorAt at)
    {
        var result = new Upstream([], [], [], [], [], [], []);
        foreach (var u in dependencies.Upstream(at))
        {
            // A step check starts each record from the backend's own state: what other records hold is given, not inherited.
            if (mode == ComparisonMode.StepCheck && (u.Step != at.Step || u.Phase != at.Phase)) continue;
            if (!_comparedKinds.Contains(u.Key.Kind)) continue;
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
