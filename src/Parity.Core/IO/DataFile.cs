using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Parity.IO;

/// <summary>
/// Opens a file that a spec names (IDX data, an <c>init.from</c> trace) for reading, only when it is a regular file,
/// one that ends at its length: a directory, a named pipe, a socket, a terminal or a device is refused with a message,
/// never waited on or read without end.
/// </summary>
public static class DataFile
{
    /// <summary>Opens <paramref name="path"/> for reading.</summary>
    /// <exception cref="FileNotFoundException">Nothing is there.</exception>
    /// <exception cref="InvalidDataException">It is a directory, a pipe, a socket, a terminal or a device.</exception>
    /// <exception cref="IOException">It cannot be opened.</exception>
    /// <exception cref="UnauthorizedAccessException">It may not be read.</exception>
    public static FileStream OpenRead(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) throw new InvalidDataException($"{path} is a directory, not a file");
        if (!File.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);
        var stream = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() ? OpenWithoutBlocking(path) : File.OpenRead(path);
        if (IsRegular(stream)) return stream;
        stream.Dispose();
        throw new InvalidDataException($"{path} is not a regular file (a named pipe, socket, terminal or device cannot be read as data); give a file");
    }

    // A regular file can seek and ends at its length. A pipe cannot seek; a device (/dev/zero) or a pseudo-file
    // (/proc) reports a length its reads do not respect, so a byte read at that length gives it away.
    private static bool IsRegular(FileStream stream)
    {
        if (!stream.CanSeek) return false;
        Span<byte> probe = stackalloc byte[1];
        try
        {
            return RandomAccess.Read(stream.SafeFileHandle, probe, stream.Length) == 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Refuses <paramref name="path"/> like <see cref="OpenRead"/> when something is there that is not a regular file.</summary>
    public static void RequireRegularIfPresent(string path)
    {
        if (File.Exists(path) || Directory.Exists(path)) OpenRead(path).Dispose();
    }

    // open(2) of a named pipe blocks until a writer appears, and .NET has no way to ask for O_NONBLOCK: open it
    // non-blocking here, so a pipe is refused at once instead of hanging the run. O_NONBLOCK has no effect on the
    // reads of a regular file.
    private static FileStream OpenWithoutBlocking(string path)
    {
        int flags = OperatingSystem.IsMacOS() ? 0x0004 | 0x1000000 : 0x800 | 0x80000; // O_RDONLY | O_NONBLOCK | O_CLOEXEC
        int fd = Open(path, flags);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            string message = $"cannot open {path}: {Marshal.GetPInvokeErrorMessage(errno)}";
            throw errno switch
            {
                2 => new FileNotFoundException(message, path),
                1 or 13 => new UnauthorizedAccessException(message),
                _ => new IOException(message),
            };
        }
        return new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read, 1 << 16);
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
}
