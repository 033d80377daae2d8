using System.Reflection;

namespace Parity;

/// <summary>
/// Parity's version, from the one MSBuild <c>Version</c> property (Directory.Build.props) every Parity assembly is built
/// with. Everything that prints or records Parity's version reads it here, so <c>parity --version</c>, report.json,
/// report.html, the run manifest and the reference backend's trace header always say the same.
/// </summary>
public static class ParityVersion
{
    /// <summary>The version, e.g. <c>0.1.0</c>: the assembly's informational version without build metadata (the <c>+commit</c> suffix).</summary>
    public static string Current { get; } = Read();

    private static string Read()
    {
        var assembly = typeof(ParityVersion).Assembly;
        string? informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        return informational?.Split('+')[0] ?? assembly.GetName().Version?.ToString(3) ?? "unknown";
    }
}
