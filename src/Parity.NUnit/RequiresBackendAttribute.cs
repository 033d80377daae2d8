using Parity.Backends;
using NUnit.Framework;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;

namespace Parity.NUnit;

/// <summary>
/// Marks a test (or fixture) Ignored, with the backend's own reason, when the named backend cannot run on this machine:
/// not in this build, or <see cref="IBackend.Describe"/> says unavailable (no libtorch, no node, no CUDA). Decided when
/// NUnit loads the test, so one build serves every machine; the reason shows in the test report.
/// </summary>
/// <example><code>[Test, RequiresBackend("torchsharp")] public void TorchSharp_agrees() =&gt; ParityAssert.Agree(spec, "torchsharp");</code></example>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class | AttributeTargets.Assembly, AllowMultiple = true, Inherited = true)]
public sealed class RequiresBackendAttribute : NUnitAttribute, IApplyToTest
{
    /// <summary>Requires <paramref name="backend"/> (a name from <c>parity backends</c>, e.g. <c>torchsharp</c>).</summary>
    public RequiresBackendAttribute(string backend)
    {
        Backend = backend;
    }

    /// <summary>The backend name.</summary>
    public string Backend { get; }

    /// <inheritdoc />
    public void ApplyToTest(Test test)
    {
        ArgumentNullException.ThrowIfNull(test);
        if (test.RunState == RunState.NotRunnable) return;
        if (UnavailableReason(Backend, ParityBackends.Default()) is not { } reason) return;
        test.RunState = RunState.Ignored;
        test.Properties.Set(PropertyNames.SkipReason, reason);
    }

    /// <summary>Why <paramref name="backend"/> cannot run here, or null when it can.</summary>
    public static string? UnavailableReason(string backend, BackendRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(registry);
        string name = backend.Split('@')[0];
        if (!registry.Contains(name))
            return $"backend '{name}' is not part of this build (known: {string.Join(", ", registry.Names)})";
        try
        {
            var description = registry.Create(name).Describe();
            return description.Available ? null : $"backend '{name}' is unavailable: {description.Reason}";
        }
        catch (Exception e)
        {
            return $"backend '{name}' is unavailable: {e.GetType().Name}: {e.Message}";
        }
    }
}
