namespace Parity.Specs;

/// <summary>
/// A user mistake in a spec, naming the JSON path (e.g. <c>$.model.layers[2].out</c>) and what was expected. A spec with
/// several mistakes is one exception that lists them all (<see cref="Errors"/>); its path and problem are the first's.
/// </summary>
public sealed class SpecException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SpecException(string jsonPath, string problem, string? file = null)
        : base((file is null ? "" : file + ": ") + jsonPath + ": " + problem)
    {
        JsonPath = jsonPath;
        Problem = problem;
        File = file;
        Errors = [this];
    }

    // Every error on its own line, in the order the spec was read.
    private SpecException(IReadOnlyList<SpecException> errors)
        : base(string.Join("\n", errors.Select(e => e.Message)))
    {
        JsonPath = errors[0].JsonPath;
        Problem = errors[0].Problem;
        File = errors[0].File;
        Errors = errors;
    }

    /// <summary>Where in the document the (first) problem is.</summary>
    public string JsonPath { get; }

    /// <summary>What is wrong and what was expected (for the first problem).</summary>
    public string Problem { get; }

    /// <summary>The spec file, when known.</summary>
    public string? File { get; }

    /// <summary>Every problem found, in the order the spec was read; one item (this exception) for a single problem.</summary>
    public IReadOnlyList<SpecException> Errors { get; }

    /// <summary>The same problems attributed to <paramref name="file"/>.</summary>
    public SpecException WithFile(string file) =>
        Errors.Count == 1 ? new(JsonPath, Problem, file) : new(Errors.Select(e => new SpecException(e.JsonPath, e.Problem, file)).ToList());

    /// <summary>One exception for <paramref name="errors"/> (at least one); a single error is returned as it is.</summary>
    public static SpecException Combine(IReadOnlyList<SpecException> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (errors.Count == 0) throw new ArgumentException("no errors to combine", nameof(errors));
        var flat = errors.SelectMany(e => e.Errors).ToList();
        return flat.Count == 1 ? flat[0] : new SpecException(flat);
    }
}
