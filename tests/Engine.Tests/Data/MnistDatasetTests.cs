using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Engine.Data;

namespace Engine.Tests.Data;

public sealed class MnistDatasetTests : IDisposable
{
    private readonly TempIdxDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(MnistSplit.Train, false)]
    [InlineData(MnistSplit.Test, true)]
    public void Loads_a_split_raw_or_gzipped(MnistSplit split, bool gzip)
    {
        (byte[] pixels, byte[] labels) = _dir.WriteSplit(split, count: 5, rows: 4, cols: 3, gzip);

        MnistDataset data = MnistDataset.Load(_dir.Path, split);

        Assert.Equal(5, data.Count);
        Assert.Equal(4, data.Rows);
        Assert.Equal(3, data.Cols);
        Assert.Equal(12, data.PixelsPerImage);
        Assert.Equal(pixels, data.Pixels);
        Assert.Equal(labels, data.Labels);
        Assert.Equal(pixels.AsSpan(24, 12), data.GetImage(2));
    }

    [Fact]
    public void Raw_file_is_preferred_when_both_forms_exist()
    {
        _dir.WriteSplit(MnistSplit.Test, count: 3, rows: 2, cols: 2, gzip: true);
        _dir.WriteSplit(MnistSplit.Test, count: 4, rows: 2, cols: 2, gzip: false);

        Assert.Equal(4, MnistDataset.Load(_dir.Path, MnistSplit.Test).Count);
    }

    [Fact]
    public void Missing_directory_names_it_and_the_files()
    {
        string missing = Path.Combine(_dir.Path, "nowhere");
        var e = Assert.Throws<DirectoryNotFoundException>(() => MnistDataset.Load(missing, MnistSplit.Train));
        Assert.Contains(missing, e.Message);
        Assert.Contains("train-images-idx3-ubyte", e.Message);
        Assert.Contains("train-labels-idx1-ubyte", e.Message);
    }

    [Fact]
    public void Missing_labels_file_names_both_forms()
    {
        _dir.WriteSplit(MnistSplit.Test, count: 2, rows: 2, cols: 2, gzip: true);
        File.Delete(Path.Combine(_dir.Path, "t10k-labels-idx1-ubyte.gz"));

        var e = Assert.Throws<FileNotFoundException>(() => MnistDataset.Load(_dir.Path, MnistSplit.Test));
        string raw = Path.Combine(_dir.Path, "t10k-labels-idx1-ubyte");
        Assert.Contains($"'{raw}'", e.Message);
        Assert.Contains($"'{raw}.gz'", e.Message);
        Assert.Equal(raw + ".gz", e.FileName);
    }

    [Fact]
    public void Missing_images_file_is_reported()
    {
        _dir.WriteSplit(MnistSplit.Train, count: 2, rows: 2, cols: 2, gzip: false);
        File.Delete(Path.Combine(_dir.Path, "train-images-idx3-ubyte"));

        var e = Assert.Throws<FileNotFoundException>(() => MnistDataset.Load(_dir.Path, MnistSplit.Train));
        Assert.Contains(Path.Combine(_dir.Path, "train-images-idx3-ubyte"), e.Message);
    }

    [Fact]
    public void Count_mismatch_names_both_files()
    {
        _dir.WriteSplit(MnistSplit.Train, count: 5, rows: 2, cols: 2, gzip: false);
        string labels = _dir.Write("train-labels-idx1-ubyte", TempIdxDirectory.Build([1, 2, 3, 4], 4));

        var e = Assert.Throws<InvalidDataException>(() => MnistDataset.Load(_dir.Path, MnistSplit.Train));
        Assert.Contains(Path.Combine(_dir.Path, "train-images-idx3-ubyte") + " holds 5 images", e.Message);
        Assert.Contains(labels + " holds 4 labels", e.Message);
    }

    [Fact]
    public void Label_out_of_range_names_the_file_and_index()
    {
        _dir.WriteSplit(MnistSplit.Test, count: 3, rows: 2, cols: 2, gzip: false);
        string labels = _dir.Write("t10k-labels-idx1-ubyte", TempIdxDirectory.Build([1, 10, 3], 3));

        var e = Assert.Throws<InvalidDataException>(() => MnistDataset.Load(_dir.Path, MnistSplit.Test));
        Assert.Equal($"{labels}: label 10 at index 1 is outside 0..9.", e.Message);
    }

    [Fact]
    public void Invalid_file_inside_a_split_surfaces_the_reader_error()
    {
        _dir.WriteSplit(MnistSplit.Test, count: 3, rows: 2, cols: 2, gzip: false);
        // A labels file where the images file should be.
        string images = _dir.Write("t10k-images-idx3-ubyte", TempIdxDirectory.Build([1, 2, 3], 3));

        var e = Assert.Throws<InvalidDataException>(() => MnistDataset.Load(_dir.Path, MnistSplit.Test));
        Assert.StartsWith(images + ": 1 dimension", e.Message);
    }

    [Fact]
    public void Constructor_validates_lengths_and_labels()
    {
        Assert.Throws<ArgumentException>(() => new MnistDataset(new byte[7], new byte[2], 2, 2));
        var e = Assert.Throws<ArgumentException>(() => new MnistDataset(new byte[8], [0, 200], 2, 2));
        Assert.Contains("label 200 at index 1", e.Message);
    }

    [Fact]
    public void Take_and_Subset_copy_the_chosen_samples()
    {
        (byte[] pixels, byte[] labels) = _dir.WriteSplit(MnistSplit.Train, count: 6, rows: 2, cols: 3, gzip: false);
        MnistDataset data = MnistDataset.Load(_dir.Path, MnistSplit.Train);

        MnistDataset first = data.Take(2);
        Assert.Equal(2, first.Count);
        Assert.Equal(pixels[..12], first.Pixels);
        Assert.Equal(labels[..2], first.Labels);

        MnistDataset picked = data.Subset([5, 0, 5]);
        Assert.Equal(3, picked.Count);
        Assert.Equal([labels[5], labels[0], labels[5]], picked.Labels);
        Assert.Equal(data.GetImage(5), picked.GetImage(0));
        Assert.Equal(data.GetImage(0), picked.GetImage(1));
        Assert.Equal(data.GetImage(5), picked.GetImage(2));
        Assert.NotSame(data.Pixels, picked.Pixels);
    }

    [Fact]
    public void Bundled_subset_has_7000_train_and_1000_test_digits()
    {
        foreach ((MnistDataset data, int count) in new[] { (BundledMnist.Train, 7000), (BundledMnist.Test, 1000) })
        {
            Assert.Equal(count, data.Count);
            Assert.Equal(28, data.Rows);
            Assert.Equal(28, data.Cols);
            Assert.Equal(count * 784, data.Pixels.Length);
            Assert.All(data.Labels, label => Assert.InRange(label, (byte)0, (byte)9));
            // Every class is present: a subset missing a digit would make accuracy figures meaningless.
            Assert.Equal(10, data.Labels.Distinct().Count());
        }
    }

    [Fact]
    public void Bundled_files_match_the_sha256_in_NOTICE()
    {
        string notice = File.ReadAllText(Path.Combine(BundledMnist.Directory, "NOTICE.md"));
        MatchCollection lines = Regex.Matches(notice, @"^([0-9a-f]{64})  (\S+)$", RegexOptions.Multiline);

        Assert.Equal(4, lines.Count);
        foreach (Match line in lines)
        {
            byte[] bytes = File.ReadAllBytes(Path.Combine(BundledMnist.Directory, line.Groups[2].Value));
            Assert.Equal(line.Groups[1].Value, Convert.ToHexStringLower(SHA256.HashData(bytes)));
        }
    }
}
