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

/// <summary>Questions the harness asks of any backend, answered the same way everywhere.</summary>
public static class BackendExtensions
{
    /// <summary>
    /// <see cref="IBackend.Describe"/>, with a backend that throws anyway (a plug-in breaking the contract) described as
    /// unavailable with the exception as its reason and no capabilities.
    /// </summary>
    public static BackendDescription DescribeSafely(this IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        try
        {
            return backend.Describe();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new BackendDescription(backend.Name, false, $"{e.GetType().Name}: {e.Message}", new Dictionary<string, string>(),
                new BackendCapabilities(new HashSet<Tensors.DType>(), new HashSet<string>()));
        }
    }

    /// <summary>
    /// Whether sessions of <paramref name="backend"/> may run beside other sessions
    /// (<see cref="BackendCapabilities.ConcurrentSessions"/>); false for a backend that cannot describe itself, which then
    /// fails in its own run, one at a time.
    /// </summary>
    public static bool RunsBesideOthers(this IBackend backend) => backend.DescribeSafely().Capabilities.ConcurrentSessions;
}
