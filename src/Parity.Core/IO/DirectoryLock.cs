using System.Text;

namespace Parity.IO;

/// <summary>
/// An exclusive lock on a directory, held as an open lock file inside it for as long as the owner lives: the
/// operating system releases it when the process ends, however it ends (a <c>kill -9</c> included), so a lock is
/// never left stale. The file stays behind with the last owner's note. On Unix .NET takes the lock with
/// <c>flock</c>, which every .NET process honours; programs that do not ask for the lock are not stopped by it.
/// </summary>
public sealed class DirectoryLock : IDisposable
{
    // How .NET reports a lock held elsewhere: ERROR_SHARING_VIOLATION on Windows, the errno of flock (EWOULDBLOCK,
    // 11 on Linux) on Unix.
    private const int SharingViolation = unchecked((int)0x80070020);
    private const int WouldBlock = 11;
    private readonly FileStream _file;

    private DirectoryLock(FileStream file) => _file = file;

    /// <summary>The lock file.</summary>
    public string Path => _file.Name;

    /// <summary>
    /// Takes the lock <paramref name="fileName"/> in <paramref name="directory"/> (creating both), waiting up to
    /// <paramref name="wait"/> for another owner to release it, and writes <paramref name="note"/> into the file for
    /// whoever finds it later. Throws <see cref="DirectoryInUseException"/> when the lock stays held.
    /// </summary>
    public static DirectoryLock Acquire(string directory, string fileName, string note, TimeSpan wait = default)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(note);
        Directory.CreateDirectory(directory);
        string path = System.IO.Path.Combine(directory, fileName);
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            try
            {
                var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                file.SetLength(0);
                file.Write(Encoding.UTF8.GetBytes(note));
                file.Flush();
                return new DirectoryLock(file);
            }
            catch (IOException e) when (e.HResult is SharingViolation or WouldBlock)
            {
                if (DateTime.UtcNow >= deadline) throw new DirectoryInUseException(directory, path, e);
                Thread.Sleep(100);
            }
        }
    }

    /// <summary>
    /// The note of the lock file in <paramref name="directory"/>, or null when there is none; throws
    /// <see cref="DirectoryInUseException"/> while its owner still holds the lock.
    /// </summary>
    public static string? ReadNote(string directory, string fileName)
    {
        string path = System.IO.Path.Combine(directory, fileName);
        if (!File.Exists(path)) return null;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(file, Encoding.UTF8);
            return reader.ReadToEnd();
        }
        catch (IOException e) when (e.HResult is SharingViolation or WouldBlock)
        {
            throw new DirectoryInUseException(directory, path, e);
        }
    }

    /// <summary>Releases the lock (the file stays).</summary>
    public void Dispose() => _file.Dispose();
}

/// <summary>A directory whose lock another live process holds.</summary>
public sealed class DirectoryInUseException(string directory, string lockFile, Exception inner)
    : IOException($"{directory} is in use by another parity process (it holds {lockFile}); wait for it to finish or choose another directory", inner);
