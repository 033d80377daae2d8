namespace Parity.Backends;

/// <summary>
/// The native libraries mapped into this process, read from <c>/proc/self/maps</c> (Linux; elsewhere none are seen). Two
/// in-process backends whose native libraries clash learn from it that the other one is loaded: TorchSharp's libtorch
/// and the libtorch of PyTorch for Python (torch-pythonnet) abort or segfault when they meet in one process.
/// </summary>
public static class LoadedLibraries
{
    /// <summary>TorchSharp's native bridge, mapped once TorchSharp has loaded its libtorch.</summary>
    public const string TorchSharp = "libLibTorchSharp.so";

    /// <summary>PyTorch for Python's bindings, mapped once an in-process interpreter has imported torch.</summary>
    public const string PyTorch = "libtorch_python.so";

    /// <summary>The path of a mapped library whose file name starts with <paramref name="fileNamePrefix"/>, or null.</summary>
    public static string? Find(string fileNamePrefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(fileNamePrefix);
        try
        {
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash < 0) continue;
                string path = line[slash..];
                if (Path.GetFileName(path).StartsWith(fileNamePrefix, StringComparison.Ordinal)) return path;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No /proc (not Linux): nothing can be seen, so nothing is refused.
        }
        return null;
    }
}
