using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Parity.Backends.Workers.Protocol;

/// <summary>
/// The directory one worker session exchanges tensor files through (docs/worker-protocol.md, "Tensors"): created
/// private to the user, removed when the session ends, and the only place a worker's answer may name a file in. A
/// named file must be a regular file directly inside it (no symbolic link, FIFO or device) of exactly the size its
/// shape needs, checked on the opened file before a byte is read, so <c>/dev/zero</c>, a FIFO or a file outside
/// cannot exhaust memory, hang the harness or leak into a trace. Directories left by runs whose process is gone are
/// removed whenever a session starts.
/// </summary>
internal sealed partial class ExchangeDirectory : IDisposable
{
    /// <summary>Name prefix of exchange directories in the temporary folder.</summary>
    public const string Prefix = "parity-worker-";

    public ExchangeDirectory()
    {
        RemoveStale();
        Path = System.IO.Path.GetFullPath(System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{Prefix}{Environment.ProcessId}-{Guid.NewGuid():N}"));
    }

    /// <summary>The directory's full path, as sent to the worker in <c>build</c>.</summary>
    public string Path { get; }

    /// <summary>Creates the directory (owner-only on Unix) if needed and returns its path.</summary>
    public string Create()
    {
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(Path);
        else Directory.CreateDirectory(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return Path;
    }

    /// <summary>
    /// Reads the worker's tensor file <paramref name="file"/> of exactly <paramref name="expectedBytes"/> bytes and
    /// deletes it (the worker hands it over). The bytes come in a buffer rented from <see cref="ArrayPool{T}.Shared"/>
    /// once the file's size is checked; the caller returns it. Throws <see cref="MalformedTensorException"/> saying what
    /// is wrong, with <paramref name="what"/> naming the tensor.
    /// </summary>
    public ArraySegment<byte> ReadAndRemove(string file, long expectedBytes, string what)
    {
        if (file.Length == 0 || file.Contains('\0') || !System.IO.Path.IsPathRooted(file))
            throw new MalformedTensorException($"{what}: its file '{file}' is not an absolute path");
        string full = System.IO.Path.GetFullPath(file);
        if (System.IO.Path.GetDirectoryName(full) != Path)
            throw new MalformedTensorException($"{what}: its file '{file}' is outside the session's exchange directory {Path} (a worker may only answer with files it wrote there)");
        var info = new FileInfo(full);
        if (info.LinkTarget is not null) throw new MalformedTensorException($"{what}: its file '{file}' is a symbolic link; a tensor file must be a regular file");
        if (!info.Exists) throw new MalformedTensorException($"{what}: its file '{file}' does not exist (or is not a regular file)");
        var bytes = OperatingSystem.IsLinux() ? ReadRegularLinux(full, expectedBytes, what) : ReadRegularPortable(info, expectedBytes, what);
        try
        {
            File.Delete(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The directory goes at Dispose.
        }
        return bytes;
    }

    /// <summary>Removes the directory and whatever is left in it.</summary>
    public void Dispose()
    {
        try
        {
            if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Removed by the next run's stale clean-up, or by the OS with /tmp.
        }
    }

    // Opened without blocking (a FIFO would block open() until a writer comes), then checked on the open file
    // descriptor, so the file cannot be swapped for another kind between the check and the read.
    private static ArraySegment<byte> ReadRegularLinux(string path, long expectedBytes, string what)
    {
        int fd = Open(path, ReadOnly | NonBlocking | CloseOnExec);
        if (fd < 0) throw new MalformedTensorException($"{what}: cannot open its file '{path}': {Marshal.GetLastPInvokeErrorMessage()}");
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        var status = new byte[StatxBufferBytes];
        if (Statx(fd, "", EmptyPath, StatxTypeMask | StatxSizeMask, status) != 0)
            throw new MalformedTensorException($"{what}: cannot inspect its file '{path}': {Marshal.GetLastPInvokeErrorMessage()}");
        int type = BitConverter.ToUInt16(status, StatxModeOffset) & FileTypeMask;
        if (type != RegularFile) throw new MalformedTensorException($"{what}: its file '{path}' is {KindOf(type)}, not a regular file");
        long size = BitConverter.ToInt64(status, StatxSizeOffset);
        return ReadExactly(handle, path, size, expectedBytes, what);
    }

    private static ArraySegment<byte> ReadRegularPortable(FileInfo info, long expectedBytes, string what)
    {
        if ((info.Attributes & (FileAttributes.Device | FileAttributes.Directory | FileAttributes.ReparsePoint)) != 0)
            throw new MalformedTensorException($"{what}: its file '{info.FullName}' is not a regular file");
        using var handle = File.OpenHandle(info.FullName, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return ReadExactly(handle, info.FullName, RandomAccess.GetLength(handle), expectedBytes, what);
    }

    private static ArraySegment<byte> ReadExactly(SafeFileHandle handle, string path, long size, long expectedBytes, string what)
    {
        if (size != expectedBytes) throw new MalformedTensorException($"{what}: its file '{path}' holds {size} bytes but its shape and dtype need {expectedBytes}");
        if (expectedBytes > Array.MaxLength) throw new MalformedTensorException($"{what}: its file '{path}' holds {size} bytes, more than one tensor can");
        var buffer = ArrayPool<byte>.Shared.Rent((int)expectedBytes);
        int done = 0;
        try
        {
            while (done < expectedBytes)
            {
                int read = RandomAccess.Read(handle, buffer.AsSpan(done, (int)expectedBytes - done), done);
                if (read <= 0) throw new MalformedTensorException($"{what}: its file '{path}' ended after {done} of {expectedBytes} bytes");
                done += read;
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
        return new ArraySegment<byte>(buffer, 0, done);
    }

    private static string KindOf(int type) => type switch
    {
        0x1000 => "a FIFO",
        0x2000 => "a character device",
        0x4000 => "a directory",
        0x6000 => "a block device",
        0xA000 => "a symbolic link",
        0xC000 => "a socket",
        _ => $"of file type 0x{type:x}",
    };

    /// <summary>Removes exchange directories of this user whose owning process no longer exists (a run killed with -9).</summary>
    private static void RemoveStale()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            foreach (string dir in Directory.EnumerateDirectories(System.IO.Path.GetTempPath(), Prefix + "*"))
            {
                string rest = System.IO.Path.GetFileName(dir)[Prefix.Length..];
                int dash = rest.IndexOf('-');
                if (dash <= 0 || !int.TryParse(rest[..dash], out int pid) || Directory.Exists($"/proc/{pid}")) continue;
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Another user's, or going away meanwhile.
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The temporary folder cannot be listed: nothing to clean.
        }
    }

    // Linux's statx(2) has one layout on every architecture (unlike struct stat), which is why it is used here.
    private const int ReadOnly = 0;
    private const int NonBlocking = 0x800;
    private const int CloseOnExec = 0x80000;
    private const int EmptyPath = 0x1000;
    private const uint StatxTypeMask = 0x1;
    private const uint StatxSizeMask = 0x200;
    private const int StatxBufferBytes = 256;
    private const int StatxModeOffset = 28;
    private const int StatxSizeOffset = 40;
    private const int FileTypeMask = 0xF000;
    private const int RegularFile = 0x8000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directoryFd, string path, int flags, uint mask, [Out] byte[] buffer);
}
