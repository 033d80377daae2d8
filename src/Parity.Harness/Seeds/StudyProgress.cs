using Parity.Running;

namespace Parity.Harness.Seeds;

/// <summary>
/// The progress of a study's arms as one ordered account, whether they run one after another or at once: only the
/// earliest arm not yet done is shown, its label added to the task (<c>backend 1 of 1 reference-f32 (shared): step
/// 40/6000</c>). When it is done, the next arm shows from where it stands (an arm that ended meanwhile, by its last report),
/// so the lines go arm by arm, as they do when the arms run one after another, and two arms never interleave.
/// </summary>
internal sealed class StudyProgress(IProgress<RunProgress> run, IReadOnlyList<string> labels)
{
    private readonly Lock _gate = new();
    private readonly bool[] _done = new bool[labels.Count];
    private readonly RunProgress?[] _latest = new RunProgress?[labels.Count];
    private int _shown;

    /// <summary>Where arm <paramref name="arm"/> (0-based, in arm order) reports.</summary>
    public IProgress<RunProgress> Of(int arm) => new Arm(this, arm);

    /// <summary>Arm <paramref name="arm"/> has ended (completed or thrown): the next arm not done is shown from its latest report.</summary>
    public void Done(int arm)
    {
        lock (_gate)
        {
            _done[arm] = true;
            // An arm that ended while an earlier one was shown was never shown: its last report stands for it as it is passed.
            for (; _shown < _done.Length && _done[_shown]; _shown++)
                if (_shown != arm && _latest[_shown] is { } last) run.Report(Labelled(_shown, last));
            if (_shown < _done.Length && _latest[_shown] is { } latest) run.Report(Labelled(_shown, latest));
        }
    }

    private void Report(int arm, RunProgress value)
    {
        lock (_gate)
        {
            _latest[arm] = value;
            if (arm == _shown) run.Report(Labelled(arm, value));
        }
    }

    private RunProgress Labelled(int arm, RunProgress value) =>
        value with { Task = value.Task is null ? labels[arm] : $"{value.Task}, {labels[arm]}" };

    private sealed class Arm(StudyProgress study, int index) : IProgress<RunProgress>
    {
        public void Report(RunProgress value) => study.Report(index, value);
    }
}
