using Parity.Backends;
using Parity.Data;
using Parity.Planning;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Harness;

/// <summary>
/// A deliberately broken backend, for demonstrations and tests of the harness itself: <paramref name="inner"/> follows
/// the spec up to step <paramref name="from"/> - 1 and the spec changed by <paramref name="change"/> from step
/// <paramref name="from"/> on, carrying its parameters, running statistics and optimizer state across (a framework
/// upgrade or a code path that silently changes a convention mid-run). It declares nothing: the harness must find the
/// change on its own.
/// </summary>
/// <param name="name">The backend's name in traces and reports.</param>
/// <param name="inner">A backend whose sessions can load a state (the reference's can).</param>
/// <param name="change">The spec the backend follows from step <paramref name="from"/> on.</param>
/// <param name="from">The first step of the changed behaviour (1 or more).</param>
public sealed class ChangedMidRunBackend(string name, IBackend inner, Func<ScenarioSpec, ScenarioSpec> change, int from) : IBackend
{
    /// <inheritdoc />
    public string Name => name;

    /// <inheritdoc />
    public BackendDescription Describe() => inner.Describe() with { Name = name };

    /// <inheritdoc />
    public IBackendSession Open(Plan plan, BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentOutOfRangeException.ThrowIfLessThan(from, 1);
        var before = inner.Open(plan, options) as IStateLoadingSession
            ?? throw new BackendException($"{inner.Name} cannot load a state, so it cannot change course mid-run");
        return new Session(before, () => (IStateLoadingSession)inner.Open(Planner.Build(change(plan.Spec), plan.TotalSteps), options), from);
    }

    private sealed class Session(IStateLoadingSession before, Func<IStateLoadingSession> openAfter, int from) : IBackendSession
    {
        private IStateLoadingSession? _after;

        private IStateLoadingSession Current => _after ?? before;

        public IReadOnlyList<ConventionMismatch> Mismatches => before.Mismatches;

        public IReadOnlyDictionary<string, string> RuntimeInfo => before.RuntimeInfo;

        public StepRecord ReadState(int step) => Current.ReadState(step);

        public StepRecord Step(int step, Batch batch, CaptureRequest capture)
        {
            if (step >= from && _after is null)
            {
                _after = openAfter();
                _after.LoadState(before.ReadState(step - 1));
            }
            return Current.Step(step, batch, capture);
        }

        public StepRecord Evaluate(int step, Batch data, CaptureRequest capture) => Current.Evaluate(step, data, capture);

        public void Dispose()
        {
            before.Dispose();
            _after?.Dispose();
        }
    }
}
