namespace Engine.Data;

/// <summary>Which half of an MNIST-style distribution to load.</summary>
public enum MnistSplit
{
    /// <summary>The training split: files <c>train-images-idx3-ubyte</c> and <c>train-labels-idx1-ubyte</c>.</summary>
    Train,

    /// <summary>The test split: files <c>t10k-images-idx3-ubyte</c> and <c>t10k-labels-idx1-ubyte</c>.</summary>
    Test,
}

/// <summary>
/// Grey-scale digit images and their class labels, kept as the raw bytes of the IDX files: image
/// <c>i</c> is <c>Pixels[i * Rows * Cols .. (i + 1) * Rows * Cols]</c>, row-major, 0 = background,
/// 255 = ink, and its label is <c>Labels[i]</c> in 0..9. Conversion to network input lives in
/// <see cref="MnistPreprocessing"/>, so the dataset stays a quarter of the size of float pixels.
/// </summary>
public sealed class MnistDataset
{
    /// <summary>The number of classes; every label is in [0, <see cref="ClassCount"/>).</summary>
    public const int ClassCount = 10;

    /// <summary>
    /// Wraps images and labels already in memory (not copied).
    /// </summary>
    /// <param name="pixels">[count, rows, cols] bytes, row-major.</param>
    /// <param name="labels">[count] labels, each in 0..9.</param>
    /// <param name="rows">Image height, positive.</param>
    /// <param name="cols">Image width, positive.</param>
    /// <exception cref="ArgumentException">
    /// <paramref name="pixels"/> is not <c>labels.Length * rows * cols</c> long, or a label is 10 or more.
    /// </exception>
    public MnistDataset(byte[] pixels, byte[] labels, int rows, int cols)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        long expected = (long)labels.Length * rows * cols;
        if (pixels.Length != expected)
        {
            throw new ArgumentException(
                $"{labels.Length} labels of {rows} x {cols} images need {expected} pixel bytes, but {pixels.Length} were given.",
                nameof(pixels));
        }
        int bad = FirstLabelOutOfRange(labels);
        if (bad >= 0)
        {
            throw new ArgumentException(
                $"label {labels[bad]} at index {bad} is outside 0..{ClassCount - 1}.", nameof(labels));
        }
        Pixels = pixels;
        Labels = labels;
        Rows = rows;
        Cols = cols;
    }

    /// <summary>All images, [<see cref="Count"/>, <see cref="Rows"/>, <see cref="Cols"/>] bytes, row-major.</summary>
    public byte[] Pixels { get; }

    /// <summary>One label per image, each in 0..9.</summary>
    public byte[] Labels { get; }

    /// <summary>The number of samples.</summary>
    public int Count => Labels.Length;

    /// <summary>Image height in pixels (28 for MNIST).</summary>
    public int Rows { get; }

    /// <summary>Image width in pixels (28 for MNIST).</summary>
    public int Cols { get; }

    /// <summary>Bytes per image, <see cref="Rows"/> x <see cref="Cols"/>.</summary>
    public int PixelsPerImage => Rows * Cols;

    /// <summary>The <see cref="Rows"/> x <see cref="Cols"/> bytes of image <paramref name="index"/>, row-major.</summary>
    public ReadOnlySpan<byte> GetImage(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return Pixels.AsSpan(index * PixelsPerImage, PixelsPerImage);
    }

    /// <summary>
    /// The standard file names of a split without the optional <c>.gz</c> suffix, for example
    /// <c>("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")</c> for <see cref="MnistSplit.Test"/>.
    /// </summary>
    public static (string Images, string Labels) FileNames(MnistSplit split) => split switch
    {
        MnistSplit.Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        MnistSplit.Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "expected Train or Test"),
    };

    /// <summary>
    /// Loads one split from <paramref name="directory"/>, which holds the standard MNIST file names
    /// (see <see cref="FileNames"/>), each raw or with a <c>.gz</c> suffix. When both forms are present,
    /// the raw file is read, since it needs no decompression; contents are recognised by their bytes
    /// (see <see cref="IdxReader"/>), so a name's suffix never decides how a file is decoded.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException"><paramref name="directory"/> does not exist.</exception>
    /// <exception cref="FileNotFoundException">Neither form of the images or labels file exists.</exception>
    /// <exception cref="InvalidDataException">
    /// A file is not a valid unsigned-byte IDX file of the right rank (see <see cref="IdxReader.Read"/>),
    /// the image and label counts differ, or a label is outside 0..9. The message names the file(s).
    /// </exception>
    public static MnistDataset Load(string directory, MnistSplit split)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        (string imagesName, string labelsName) = FileNames(split);
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException(
                $"MNIST directory '{directory}' does not exist; it should hold {imagesName}[.gz] and {labelsName}[.gz].");
        }
        // Both files are located before either is read, so a missing file is reported at once rather than
        // after decompressing the other one.
        string imagesPath = FindFile(directory, imagesName, split, "images");
        string labelsPath = FindFile(directory, labelsName, split, "labels");

        IdxArray images = IdxReader.Read(imagesPath, expectedDimensionCount: 3);
        IdxArray labels = IdxReader.Read(labelsPath, expectedDimensionCount: 1);

        int imageCount = images.Dimensions[0];
        int labelCount = labels.Dimensions[0];
        if (imageCount != labelCount)
        {
            throw new InvalidDataException(
                $"{imagesPath} holds {imageCount} images but {labelsPath} holds {labelCount} labels; " +
                "a split needs exactly one label per image.");
        }
        int bad = FirstLabelOutOfRange(labels.Data);
        if (bad >= 0)
        {
            throw new InvalidDataException(
                $"{labelsPath}: label {labels.Data[bad]} at index {bad} is outside 0..{ClassCount - 1}.");
        }
        return new MnistDataset(images.Data, labels.Data, images.Dimensions[1], images.Dimensions[2]);
    }

    /// <summary>The first <paramref name="count"/> samples, copied into a new dataset.</summary>
    public MnistDataset Take(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, Count);
        return new MnistDataset(
            Pixels.AsSpan(0, count * PixelsPerImage).ToArray(), Labels.AsSpan(0, count).ToArray(), Rows, Cols);
    }

    /// <summary>
    /// The samples at <paramref name="indices"/>, in that order (repeats allowed), copied into a new dataset.
    /// </summary>
    public MnistDataset Subset(ReadOnlySpan<int> indices)
    {
        var pixels = new byte[indices.Length * PixelsPerImage];
        var labels = new byte[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            GetImage(indices[i]).CopyTo(pixels.AsSpan(i * PixelsPerImage, PixelsPerImage));
            labels[i] = Labels[indices[i]];
        }
        return new MnistDataset(pixels, labels, Rows, Cols);
    }

    private static string FindFile(string directory, string name, MnistSplit split, string kind)
    {
        string raw = Path.Combine(directory, name);
        if (File.Exists(raw))
        {
            return raw;
        }
        string gzip = raw + ".gz";
        if (File.Exists(gzip))
        {
            return gzip;
        }
        throw new FileNotFoundException(
            $"MNIST {split.ToString().ToLowerInvariant()} {kind} not found: neither '{raw}' nor '{gzip}' exists.",
            gzip);
    }

    private static int FirstLabelOutOfRange(ReadOnlySpan<byte> labels)
    {
        // IndexOfAnyInRange is vectorised; labels are bytes, so "outside 0..9" is "in 10..255".
        return labels.IndexOfAnyInRange((byte)ClassCount, byte.MaxValue);
    }
}
