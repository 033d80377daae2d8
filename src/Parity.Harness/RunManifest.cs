using System.Text.Json;
using Parity.IO;
using Parity.Specs;

namespace Parity.Harness;

/// <summary>
/// The note a run leaves in its run directory's lock file (<see cref="FileName"/>): which process holds the directory
/// and what it runs. The lock keeps a second run out while this one lives; the note stays after the run, so a
/// directory whose run was killed before writing report.json can still be read back (<c>parity diagnose</c>).
/// </summary>
/// <param name="Pid">The run's process id.</param>
/// <param name="StartedUtc">When the run took the directory.</param>
/// <param name="Scenario">Scenario name.</param>
/// <param name="SpecPath">The spec file as given, or null.</param>
/// <param name="SpecHash">Hash of the canonical spec.</param>
/// <param name="Reference">The reference backend.</param>
/// <param name="Backends">The backends asked for.</param>
public sealed record RunManifest(int Pid, DateTimeOffset StartedUtc, string Scenario, string? SpecPath, string SpecHash, string Reference,
    IReadOnlyList<string> Backends)
{
    /// <summary>The Parity version that ran (<see cref="Parity.ParityVersion"/>); null in a note written before it was recorded.</summary>
    public string? ParityVersion { get; init; }

    /// <summary>The lock file of a run directory.</summary>
    public const string FileName = "run.lock";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Takes <paramref name="request"/>'s out directory for this process; fails at once when another run holds it.</summary>
    public static DirectoryLock Lock(RunRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string? specPath = request.SpecPath is null ? null : Path.GetFullPath(request.SpecPath);
        var manifest = new RunManifest(Environment.ProcessId, DateTimeOffset.UtcNow, request.Spec.Name, specPath, SpecLoader.Hash(request.Spec),
            request.Reference, request.Backends) { ParityVersion = Parity.ParityVersion.Current };
        return DirectoryLock.Acquire(request.OutDirectory, FileName, JsonSerializer.Serialize(manifest, Json));
    }

    /// <summary>
    /// The manifest of the run that last held <paramref name="runDirectory"/>, or null when none did. Throws
    /// <see cref="DirectoryInUseException"/> while that run is alive, <see cref="InvalidDataException"/> when the note is unreadable.
    /// </summary>
    public static RunManifest? Read(string runDirectory)
    {
        string? note = DirectoryLock.ReadNote(runDirectory, FileName);
        if (note is null) return null;
        RunManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<RunManifest>(note, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{Path.Combine(runDirectory, FileName)}: unreadable run note: {e.Message}");
        }
        if (manifest is null || string.IsNullOrEmpty(manifest.Scenario) || string.IsNullOrEmpty(manifest.SpecHash) || string.IsNullOrEmpty(manifest.Reference) || manifest.Backends is null)
            throw new InvalidDataException($"{Path.Combine(runDirectory, FileName)}: the run note lacks scenario, specHash, reference or backends");
        return manifest;
    }
}
