using Parity.Planning;

namespace Parity.Backends;

/// <summary>
/// A framework that can run a <see cref="Plan"/>. Implementations live in one project (or folder) each;
/// they never compare and never report. Adding a backend touches nothing else (docs/backends.md).
/// </summary>
public interface IBackend
{
    /// <summary>The name used in <c>--backends</c>, traces and reports.</summary>
    string Name { get; }

    /// <summary>Whether the backend can run on this machine, why not, and what it supports. Must not throw.</summary>
    BackendDescription Describe();

    /// <summary>
    /// Builds the plan's model with the plan's initial state. Throws <see cref="BackendException"/> (or
    /// anything: the runner turns every exception into an <c>error</c> result) when it cannot.
    /// </summary>
    IBackendSession Open(Plan plan, BackendOptions options);
}
