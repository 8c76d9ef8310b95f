using System.Runtime.CompilerServices;

namespace Engine.Tensors;

/// <summary>
/// A dense float32 tensor stored contiguously in row-major order (for images: NCHW, as PyTorch).
/// It owns its buffer; views are spans over <see cref="Data"/>, so kernels stay free of tensor types.
/// </summary>
public sealed class FloatTensor
{
    private int[] _shape;
    private float[] _data;
    private int _length;

    /// <summary>A zero-filled tensor of the given shape.</summary>
    public FloatTensor(params int[] shape)
    {
        _length = CheckedLength(shape);
        _shape = (int[])shape.Clone();
        _data = new float[_length];
    }

    /// <summary>A tensor over the given values, which are copied.</summary>
    public FloatTensor(ReadOnlySpan<float> values, params int[] shape)
    {
        _length = CheckedLength(shape);
        if (values.Length != _length)
        {
            throw new ArgumentException(
                $"{values.Length} values cannot fill a tensor of shape {Format(shape)} ({_length} elements).", nameof(values));
        }
        _shape = (int[])shape.Clone();
        _data = values.ToArray();
    }

    /// <summary>The dimensions, outermost first.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>The number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>The number of elements: the product of the dimensions.</summary>
    public int Length => _length;

    /// <summary>The elements in row-major order.</summary>
    public Span<float> Data
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data.AsSpan(0, _length);
    }

    /// <summary>Dimension <paramref name="axis"/> (negative counts from the end).</summary>
    public int Dim(int axis) => _shape[axis < 0 ? _shape.Length + axis : axis];

    /// <summary>
    /// Gives the tensor a new shape, reusing the buffer when it is large enough, so that layers can keep one
    /// output tensor across batches of different sizes without allocating. Contents are unspecified afterwards.
    /// </summary>
    public void Resize(ReadOnlySpan<int> shape)
    {
        if (shape.SequenceEqual(_shape))
        {
            return;
        }
        int length = CheckedLength(shape);
        if (length > _data.Length)
        {
            _data = new float[length];
        }
        _shape = shape.ToArray();
        _length = length;
    }

    /// <summary>Changes the shape in place without touching the data; the element count must not change.</summary>
    public void Reshape(params int[] shape)
    {
        int length = CheckedLength(shape);
        if (length != _length)
        {
            throw new ArgumentException(
                $"cannot reshape a tensor of shape {Format(_shape)} ({_length} elements) to {Format(shape)} ({length} elements).");
        }
        _shape = (int[])shape.Clone();
    }

    /// <summary>A copy with its own buffer.</summary>
    public FloatTensor Clone() => new(Data, _shape);

    /// <summary>Sets every element to zero.</summary>
    public void Clear() => Data.Clear();

    /// <summary>Whether the shape equals <paramref name="shape"/>.</summary>
    public bool HasShape(ReadOnlySpan<int> shape) => shape.SequenceEqual(_shape);

    /// <summary>Throws an <see cref="ArgumentException"/> naming <paramref name="what"/> unless the shape equals <paramref name="expected"/>.</summary>
    public void RequireShape(ReadOnlySpan<int> expected, string what)
    {
        if (!HasShape(expected))
        {
            throw new ArgumentException($"{what}: expected shape {Format(expected)}, got {Format(_shape)}.");
        }
    }

    /// <summary>The shape as PyTorch prints it, for example [64, 1, 32, 32].</summary>
    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"FloatTensor{Format(_shape)}";

    private static int CheckedLength(ReadOnlySpan<int> shape)
    {
        long length = 1;
        foreach (int d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentException($"shape {Format(shape)} has a negative dimension.");
            }
            length *= d;
            if (length > Array.MaxLength)
            {
                throw new ArgumentException($"shape {Format(shape)} has more elements than an array can hold.");
            }
        }
        return (int)length;
    }
}
