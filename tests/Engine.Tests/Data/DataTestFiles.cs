using System.Buffers.Binary;
using System.IO.Compression;
using Engine.Data;

namespace Engine.Tests.Data;

/// <summary>Builds IDX files byte by byte in a temporary directory that is deleted afterwards.</summary>
internal sealed class TempIdxDirectory : IDisposable
{
    public TempIdxDirectory() => Path = Directory.CreateTempSubdirectory("engine-idx-").FullName;

    public string Path { get; }

    /// <summary>Magic 0x0000{type}{dims.Length}, big-endian dims, then the payload.</summary>
    public static byte[] Build(byte[] payload, params int[] dims) => BuildWithMagic(0x0800u | (uint)dims.Length, payload, dims);

    public static byte[] BuildWithMagic(uint magic, byte[] payload, params int[] dims)
    {
        var bytes = new byte[4 + 4 * dims.Length + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, magic);
        for (int i = 0; i < dims.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dims[i]);
        }
        payload.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    public static byte[] Gzip(byte[] raw)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest))
        {
            gzip.Write(raw);
        }
        return output.ToArray();
    }

    public string Write(string name, byte[] bytes)
    {
        string path = System.IO.Path.Combine(Path, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Writes a complete split: images [count, rows, cols] with pixel = (i + r + c) % 256, labels i % 10.</summary>
    public (byte[] Pixels, byte[] Labels) WriteSplit(MnistSplit split, int count, int rows, int cols, bool gzip)
    {
        var pixels = new byte[count * rows * cols];
        for (int i = 0; i < count; i++)
        {
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < cols; c++)
                {
                    pixels[(i * rows + r) * cols + c] = (byte)((i + r + c) % 256);
                }
            }
        }
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = (byte)(i % 10);
        }
        (string imagesName, string labelsName) = MnistDataset.FileNames(split);
        string suffix = gzip ? ".gz" : "";
        byte[] images = Build(pixels, count, rows, cols);
        byte[] labelFile = Build(labels, count);
        Write(imagesName + suffix, gzip ? Gzip(images) : images);
        Write(labelsName + suffix, gzip ? Gzip(labelFile) : labelFile);
        return (pixels, labels);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temporary directory is harmless; failing a test over it would not be.
        }
    }
}

/// <summary>The MNIST subset bundled with the CLI, copied next to the test assembly; decoded once per run.</summary>
internal static class BundledMnist
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "data", "mnist");

    private static readonly Lazy<MnistDataset> LazyTrain = new(() => MnistDataset.Load(Directory, MnistSplit.Train));
    private static readonly Lazy<MnistDataset> LazyTest = new(() => MnistDataset.Load(Directory, MnistSplit.Test));

    public static MnistDataset Train => LazyTrain.Value;

    public static MnistDataset Test => LazyTest.Value;
}
