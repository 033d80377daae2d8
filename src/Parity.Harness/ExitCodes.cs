namespace Parity.Harness;

/// <summary>Process exit codes (README.md and docs/report.md).</summary>
public static class ExitCodes
{
    /// <summary>Every comparison within tolerance.</summary>
    public const int Agree = 0;

    /// <summary>At least one divergence.</summary>
    public const int Diverge = 1;

    /// <summary>Usage, input, harness or backend error.</summary>
    public const int Error = 2;
}

/// <summary>A user mistake on the command line or in its inputs: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
