using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Comparison;
using Parity.Planning;
using Parity.Running;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Harness.StepChecks;

/// <summary>
/// The step checks' oracle for one backend: for every fully captured step s of the backend's trace, the float64
/// reference replays step s from the backend's own state after step s - 1 (parameters, running statistics, optimizer
/// slots and step count) on the same batch, and the float32 envelope backends replay it from the same state rounded to
/// float32. Evaluations are replayed from the state after their step. Errors therefore cannot accumulate: each step is
/// judged against the rounding of that one step (docs/tolerances.md, "Step checks"). A failure is confirmed against more
/// permuted float32 draws of its step before it is believed (<see cref="AlignedRecords.MoreDraws"/>).
/// <para>The replay runs the spec patched with the backend's declared conventions that carry a value
/// (<see cref="SpecPatch"/>), so those conventions are judged strictly too.</para>
/// </summary>
public sealed class StepReplay : IDisposable
{
    private readonly Plan _plan;
    private readonly TraceLayout _layout;
    private readonly IStateLoadingSession _expected;
    private readonly List<IStateLoadingSession> _envelopes = [];
    private IStateLoadingSession? _moreDraws; // the float32 reference under the confirmation draws' permutations
    private int _drawsSoFar;

    private StepReplay(Plan plan, IStateLoadingSession expected, IReadOnlyList<string> envelopeNames,
        IReadOnlyList<(ConventionMismatch Mismatch, string Reason)> notReplayed)
    {
        _plan = plan;
        _layout = TraceLayout.Of(plan);
        _expected = expected;
        EnvelopeNames = envelopeNames;
        NotReplayed = notReplayed;
    }

    /// <summary>The envelope backends replaying each step in float32 (none for a float64 backend).</summary>
    public IReadOnlyList<string> EnvelopeNames { get; }

    /// <summary>Declared mismatches the replay could not take on: their affected kinds can only be excused.</summary>
    public IReadOnlyList<(ConventionMismatch Mismatch, string Reason)> NotReplayed { get; }

    /// <summary>Train steps replayed so far.</summary>
    public int StepsReplayed { get; private set; }

    /// <summary>Envelope replays beyond the envelope backends' own, drawn to confirm a failure (<see cref="AlignedRecords.MoreDraws"/>).</summary>
    public int ExtraDrawsReplayed { get; private set; }

    /// <summary>Opens the oracle for <paramref name="backend"/> (trained in <paramref name="dtype"/>, declaring <paramref name="mismatches"/>).</summary>
    public static StepReplay Open(Plan plan, string backend, DType dtype, IReadOnlyList<ConventionMismatch> mismatches)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(mismatches);
        var (spec, notReplayed) = SpecPatch.Apply(plan.Spec, mismatches);
        var replayPlan = ReferenceEquals(spec, plan.Spec) ? plan : plan.WithSpec(spec);
        var envelopes = dtype == DType.Float32 ? NoiseEnvelope.EnvelopesOf(backend) : [];
        var replay = new StepReplay(replayPlan, OpenOracle(ReferenceBackend.Float64(), replayPlan, DType.Float64), envelopes, notReplayed);
        try
        {
            foreach (string name in envelopes) replay._envelopes.Add(OpenOracle(NoiseEnvelope.Create(name), replayPlan, DType.Float32));
            return replay;
        }
        catch
        {
            replay.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The backend's records aligned with their replays: the initial state against the plan's (under injected
    /// initialization), each fully captured train record whose previous state is complete, and each eval record whose
    /// state is. Records that cannot be replayed are left out, not failed.
    /// </summary>
    public IEnumerable<AlignedRecords> Align(IEnumerable<StepRecord> actual)
    {
        ArgumentNullException.ThrowIfNull(actual);
        StepRecord? before = null; // the state the next train step starts from
        StepRecord? after = null; // the state after the last train step, for its evaluation
        foreach (var record in actual)
        {
            switch (record.Phase)
            {
                case RecordPhase.Initial:
                    if (_plan.Spec.Init.Mode == InitMode.Injected) yield return new AlignedRecords(0, RecordPhase.Initial, _expected.ReadState(0), record, []);
                    before = _layout.HoldsState(record) ? record : null;
                    break;
                case RecordPhase.Train:
                    if (before is not null && TensorJudge.Captured(record))
                    {
                        var batch = _plan.BatchFor(record.Step);
                        // Every replay follows the backend's kink decisions (ReLU, LeakyReLU, ELU at pre-activations within rounding of
                        // zero): a kink flip inside the step then leaves nothing to inherit.
                        var state = before;
                        StepRecord Run(IStateLoadingSession s) => s.Step(record.Step, batch, Replayed, record);
                        yield return new AlignedRecords(record.Step, RecordPhase.Train, Replay(_expected, state, Run), record, [.. _envelopes.Select(e => Replay(e, state, Run))])
                        {
                            MoreDraws = MoreDraws(state, Run),
                        };
                        StepsReplayed++;
                    }
                    before = after = _layout.HoldsState(record) ? record : null;
                    break;
                default:
                    if (after is not null && after.Step == record.Step && TensorJudge.Captured(record))
                    {
                        // In the chunks the run evaluated in, merged the same way, so the replay is what the backend was asked.
                        var state = after;
                        StepRecord Run(IStateLoadingSession s) => ChunkedEvaluation.Evaluate(s, _plan, record.Step, Replayed, (chunk, _) => chunk);
                        yield return new AlignedRecords(record.Step, RecordPhase.Eval, Replay(_expected, state, Run), record, [.. _envelopes.Select(e => Replay(e, state, Run))])
                        {
                            MoreDraws = MoreDraws(state, Run),
                        };
                    }
                    break;
            }
        }
    }

    // What a replay records: everything, at the sites the run's capture filter kept, so the replay and the backend's
    // record hold the same sites (a kind the backend was not asked for is absent from its record as a whole and skipped).
    private CaptureRequest Replayed => CaptureRequest.Everything with { Filter = _plan.Filter };

    // Fresh envelope draws of one step on demand: the float32 reference under permutations no draw used before.
    private Func<int, IEnumerable<StepRecord>>? MoreDraws(StepRecord state, Func<IStateLoadingSession, StepRecord> run)
    {
        if (_envelopes.Count == 0) return null;
        return count => Draw(count, state, run);
    }

    private IEnumerable<StepRecord> Draw(int count, StepRecord state, Func<IStateLoadingSession, StepRecord> run)
    {
        _moreDraws ??= OpenOracle(ReferenceBackend.Float32(), _plan, DType.Float32);
        for (int i = 0; i < count; i++)
        {
            ExtraDrawsReplayed++;
            yield return Replay(PermutedBatchBackend.Draw(_moreDraws, _plan.Spec.Seed, ++_drawsSoFar), state, run);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _expected.Dispose();
        foreach (var e in _envelopes) e.Dispose();
        _moreDraws?.Dispose();
    }

    private static StepRecord Replay(IStateLoadingSession oracle, StepRecord state, Func<IStateLoadingSession, StepRecord> run)
    {
        oracle.LoadState(state);
        return run(oracle);
    }

    private static IStateLoadingSession OpenOracle(IBackend backend, Plan plan, DType dtype) =>
        backend.Open(plan, new BackendOptions(dtype)) as IStateLoadingSession
            ?? throw new InvalidOperationException($"{backend.Name} cannot load a state: it cannot replay steps");
}
