namespace Parity.Running;

/// <summary>How one backend's run ended, as its trace header and the report say it (camelCase in JSON).</summary>
public enum RunStatus
{
    /// <summary>Every step ran (or the run stopped at a non-finite loss, see <see cref="BackendRun.Message"/>).</summary>
    Completed,

    /// <summary>The backend raised an error, crashed or hung; the trace holds the steps before it.</summary>
    Failed,

    /// <summary>The backend cannot run on this machine; nothing was attempted.</summary>
    Unavailable,

    /// <summary>The run is going on (a trace header before it closes).</summary>
    Running,

    /// <summary>The run's process died before it closed the trace (killed or crashed): the trace holds what was written.</summary>
    Interrupted,
}

/// <summary>The outcome of a comparison, of a backend, of a run (camelCase in JSON: <c>agree</c>, <c>diverge</c>, <c>error</c>).</summary>
public enum Verdict
{
    /// <summary>Every counted tensor is within tolerance.</summary>
    Agree,

    /// <summary>At least one counted tensor fails (or is missing).</summary>
    Diverge,

    /// <summary>Something could not be judged: a backend failed or was unavailable, a trace did not finish.</summary>
    Error,
}

/// <summary>How verdicts combine, and what a run's status means for its verdict: the one place they are decided.</summary>
public static class Verdicts
{
    /// <summary>The verdict of several: an error if any is, else a divergence if any is, else agreement (agreement when there are none).</summary>
    public static Verdict Combine(IEnumerable<Verdict> verdicts)
    {
        ArgumentNullException.ThrowIfNull(verdicts);
        var worst = Verdict.Agree;
        foreach (var v in verdicts)
            if (v > worst) worst = v;
        return worst;
    }

    /// <summary>The verdict of several: <see cref="Combine(IEnumerable{Verdict})"/>.</summary>
    public static Verdict Combine(params Verdict[] verdicts) => Combine((IEnumerable<Verdict>)verdicts);

    /// <summary>A backend that did not complete leaves its run an error whatever was compared before.</summary>
    public static Verdict Of(RunStatus status) => status == RunStatus.Completed ? Verdict.Agree : Verdict.Error;
}

/// <summary>Process exit codes: 0 agree, 1 a divergence, 2 usage, input, harness or backend error.</summary>
public static class ExitCodes
{
    /// <summary>Every comparison within tolerance.</summary>
    public const int Agree = 0;

    /// <summary>At least one divergence.</summary>
    public const int Diverge = 1;

    /// <summary>Usage, input, harness or backend error.</summary>
    public const int Error = 2;

    /// <summary>The exit code of a verdict.</summary>
    public static int Of(Verdict verdict) => verdict switch
    {
        Verdict.Agree => Agree,
        Verdict.Diverge => Diverge,
        _ => Error,
    };
}

/// <summary>The names of outcomes as every report format writes them (the JSON names): <c>agree</c>, <c>completed</c>.</summary>
public static class OutcomeNames
{
    /// <summary><c>agree</c>, <c>diverge</c> or <c>error</c>.</summary>
    public static string Name(this Verdict verdict) => verdict.ToString().ToLowerInvariant();

    /// <summary><c>completed</c>, <c>failed</c>, <c>unavailable</c>, <c>running</c> or <c>interrupted</c>.</summary>
    public static string Name(this RunStatus status) => status.ToString().ToLowerInvariant();
}
