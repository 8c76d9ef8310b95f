namespace Engine.Kernels;

/// <summary>Scratch arrays that only grow: once a buffer has served a size, serving it again allocates nothing.</summary>
internal static class ScratchBuffer
{
    /// <summary>The first <paramref name="length"/> elements of <paramref name="buffer"/>, replacing it by a larger array first when it is too short.</summary>
    public static Span<T> Grow<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length)
        {
            buffer = new T[length];
        }
        return buffer.AsSpan(0, length);
    }
}
