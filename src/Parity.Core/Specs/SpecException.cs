namespace Parity.Specs;

/// <summary>A user mistake in a spec, naming the JSON path (e.g. <c>$.model.layers[2].out</c>) and what was expected.</summary>
public sealed class SpecException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SpecException(string jsonPath, string problem, string? file = null)
        : base((file is null ? "" : file + ": ") + jsonPath + ": " + problem)
    {
        JsonPath = jsonPath;
        Problem = problem;
        File = file;
    }

    /// <summary>Where in the document the problem is.</summary>
    public string JsonPath { get; }

    /// <summary>What is wrong and what was expected.</summary>
    public string Problem { get; }

    /// <summary>The spec file, when known.</summary>
    public string? File { get; }

    /// <summary>The same problem attributed to <paramref name="file"/>.</summary>
    public SpecException WithFile(string file) => new(JsonPath, Problem, file);
}
