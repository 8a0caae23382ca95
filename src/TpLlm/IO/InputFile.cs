using System.Runtime.InteropServices;

namespace TpLlm.IO;

/// <summary>
/// Opens the files a model folder names, safely: only regular files (after following symbolic
/// links — a Hugging Face cache snapshot is a folder of links to blobs), so a FIFO cannot hang the
/// open and a device such as <c>/dev/zero</c> cannot be read without end; and whole-file reads are
/// capped, so a huge file fails with a message instead of exhausting memory.
/// </summary>
public static unsafe class InputFile
{
    /// <summary>What a path names, after following symbolic links.</summary>
    public enum Kind
    {
        /// <summary>Nothing (or a dangling link).</summary>
        Missing,
        /// <summary>A regular file.</summary>
        Regular,
        /// <summary>A directory.</summary>
        Directory,
        /// <summary>A FIFO (named pipe).</summary>
        Fifo,
        /// <summary>A character device (e.g. /dev/zero).</summary>
        CharacterDevice,
        /// <summary>A block device.</summary>
        BlockDevice,
        /// <summary>A socket.</summary>
        Socket,
    }

    /// <summary>What <paramref name="path"/> names, following links. Where the type cannot be read (not Linux), existing files count as regular.</summary>
    public static Kind KindOf(string path)
    {
        if (Directory.Exists(path)) return Kind.Directory;
        if (!File.Exists(path)) return Kind.Missing;
        if (!OperatingSystem.IsLinux() || StModeOffset < 0) return Kind.Regular;
        var buf = stackalloc byte[512];
        if (Stat(path, buf) != 0) return Kind.Missing;
        uint mode = *(uint*)(buf + StModeOffset) & 0xF000;
        return mode switch
        {
            0x8000 => Kind.Regular,
            0x4000 => Kind.Directory,
            0x1000 => Kind.Fifo,
            0x2000 => Kind.CharacterDevice,
            0x6000 => Kind.BlockDevice,
            0xC000 => Kind.Socket,
            _ => Kind.Missing,
        };
    }

    /// <summary>True when <paramref name="path"/> names anything (through links): a file that is there must be read, or be refused with a reason.</summary>
    public static bool Exists(string path) => KindOf(path) != Kind.Missing;

    /// <summary>True when <paramref name="path"/> is a regular file (through links).</summary>
    public static bool IsRegular(string path) => KindOf(path) == Kind.Regular;

    /// <summary>
    /// Throws <paramref name="error"/>(message) unless <paramref name="path"/> is a regular file: the message says
    /// what it is instead (missing, a directory, a FIFO, a device…).
    /// </summary>
    public static void RequireRegular(string path, Func<string, TpLlmException> error)
    {
        var kind = KindOf(path);
        if (kind == Kind.Regular) return;
        throw error(kind == Kind.Missing ? $"{path}: file not found" : $"{path}: is a {Describe(kind)}, not a regular file");
    }

    /// <summary>
    /// The whole of the regular file <paramref name="path"/>, which may hold at most <paramref name="maxBytes"/>;
    /// anything else is <paramref name="error"/>(message) naming the file and the numbers.
    /// </summary>
    public static byte[] ReadAll(string path, long maxBytes, Func<string, TpLlmException> error)
    {
        RequireRegular(path, error);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            long length = stream.Length;
            if (length > maxBytes) throw error($"{path}: {length} bytes, more than the {maxBytes} bytes such a file may have");
            var bytes = new byte[length];
            stream.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw error($"{path}: cannot read the file: {e.Message}");
        }
    }

    private static string Describe(Kind kind) => kind switch
    {
        Kind.Directory => "directory",
        Kind.Fifo => "FIFO (named pipe)",
        Kind.CharacterDevice => "character device",
        Kind.BlockDevice => "block device",
        Kind.Socket => "socket",
        _ => kind.ToString(),
    };

    // st_mode's offset in struct stat: x86-64 has st_dev, st_ino, st_nlink before it; the generic layout (arm64) st_dev, st_ino
    private static readonly int StModeOffset = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 24,
        Architecture.Arm64 => 16,
        _ => -1,
    };

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buf);
}
