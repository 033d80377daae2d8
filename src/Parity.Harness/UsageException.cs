namespace Parity.Harness;

/// <summary>A user mistake on the command line or in its inputs: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
