using System.Text.Json.Nodes;
using Parity.Backends;
using Parity.Specs;

namespace Parity.Harness.StepChecks;

/// <summary>
/// The spec a backend really runs: the spec with each declared convention mismatch's <see cref="ConventionMismatch.Value"/>
/// written at its setting. The step checks replay a backend's steps under it, so a backend that declares one convention
/// is judged strictly against that convention (and a backend that declares one and computes a third is caught).
/// </summary>
public static class SpecPatch
{
    /// <summary>
    /// <paramref name="spec"/> with every replayable mismatch applied, and the mismatches that could not be (no value, a
    /// setting path that names nothing, or a value the spec format refuses), each with the reason.
    /// </summary>
    public static (ScenarioSpec Spec, IReadOnlyList<(ConventionMismatch Mismatch, string Reason)> NotReplayed) Apply(ScenarioSpec spec, IReadOnlyList<ConventionMismatch> mismatches)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(mismatches);
        var notReplayed = new List<(ConventionMismatch, string)>();
        if (mismatches.Count == 0) return (spec, notReplayed);
        var root = JsonNode.Parse(SpecWriter.Write(spec))!.AsObject();
        var applied = new List<ConventionMismatch>();
        foreach (var m in mismatches)
        {
            if (m.Value is null)
            {
                notReplayed.Add((m, "the backend gave no spec value for what it computes instead"));
                continue;
            }
            if (Locate(root, m.Setting) is not { } target)
            {
                notReplayed.Add((m, $"'{m.Setting}' names no setting of the spec"));
                continue;
            }
            target.Parent[target.Key] = m.Value.DeepClone();
            applied.Add(m);
        }
        if (applied.Count == 0) return (spec, notReplayed);
        try
        {
            var patched = SpecLoader.Parse(root.ToJsonString(), spec.BaseDirectory);
            return (patched with { Name = spec.Name }, notReplayed);
        }
        catch (SpecException e)
        {
            // One bad value spoils the patched spec: replay none of them rather than a spec nobody declared.
            return (spec, [.. notReplayed, .. applied.Select(m => (m, $"its value {m.Value!.ToJsonString()} is not a valid spec value: {e.Message}"))]);
        }
    }

    /// <summary>
    /// The object and key a setting path names: dot-separated keys, an array element chosen by name with
    /// <c>[name]</c> or by index with <c>[2]</c> (e.g. <c>model.layers[bn1].runningVariance</c>, <c>$.model.layers[1].eps</c>);
    /// null when the path names nothing.
    /// </summary>
    private static (JsonObject Parent, string Key)? Locate(JsonObject root, string setting)
    {
        JsonNode? node = root;
        // "$.model.layers[2].eps" (a JSON path) and "model.layers[bn].eps" (an element by name) both name a setting.
        var segments = (setting.StartsWith("$.", StringComparison.Ordinal) ? setting[2..] : setting).Split('.');
        for (int i = 0; i < segments.Length; i++)
        {
            string segment = segments[i];
            string key = segment;
            string? element = null;
            int bracket = segment.IndexOf('[', StringComparison.Ordinal);
            if (bracket >= 0)
            {
                if (!segment.EndsWith(']')) return null;
                key = segment[..bracket];
                element = segment[(bracket + 1)..^1];
            }
            if (node is not JsonObject obj) return null;
            bool last = i == segments.Length - 1;
            if (last && element is null) return obj.ContainsKey(key) ? (obj, key) : null;
            node = obj[key];
            if (element is not null)
            {
                node = node is not JsonArray array ? null
                    : int.TryParse(element, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int index)
                        ? index < array.Count ? array[index] : null
                        : array.FirstOrDefault(x => x is JsonObject o && (string?)o["name"] == element);
                if (last) return null;
            }
        }
        return null;
    }
}
