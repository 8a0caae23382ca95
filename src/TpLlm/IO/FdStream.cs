using System.Runtime.InteropServices;

namespace TpLlm.IO;

/// <summary>
/// A write-only stream over a file descriptor that calls <c>write(2)</c> and never seeks: output
/// redirected to a file shared with another descriptor (<c>&gt; out 2&gt;&amp;1</c>) appends at the
/// shared offset, and nothing initializes the terminal.
/// </summary>
public sealed unsafe class FdStream(int fd) : Stream
{
    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern nint SysWrite(int fd, byte* buffer, nint count);

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            long done = 0;
            while (done < buffer.Length)
            {
                nint n = SysWrite(fd, p + done, (nint)(buffer.Length - done));
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == 4) continue; // EINTR
                    if (errno == 32) return;  // EPIPE: the reader went away (e.g. `| head`)
                    throw new IOException($"write to file descriptor {fd} failed (errno {errno})");
                }
                done += n;
            }
        }
    }

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override void Flush() { }

    /// <inheritdoc />
    public override bool CanRead => false;
    /// <inheritdoc />
    public override bool CanSeek => false;
    /// <inheritdoc />
    public override bool CanWrite => true;
    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();
    /// <inheritdoc />
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();
}
