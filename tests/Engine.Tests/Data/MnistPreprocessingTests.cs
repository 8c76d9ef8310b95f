using Engine.Data;

namespace Engine.Tests.Data;

public sealed class MnistPreprocessingTests
{
    private const int Canvas = MnistPreprocessing.CanvasSize;

    // A 28 x 28 image whose every pixel is distinct enough to be traced: v = 1 + (r * 28 + c) % 255.
    private static byte[] Traceable28()
    {
        var image = new byte[28 * 28];
        for (int i = 0; i < image.Length; i++)
        {
            image[i] = (byte)(1 + i % 255);
        }
        return image;
    }

    private static float[] Write(byte[] image, int rows, int cols, float mean = 0f, float std = 1f, int shiftX = 0, int shiftY = 0)
    {
        var canvas = new float[MnistPreprocessing.CanvasPixels];
        MnistPreprocessing.WriteImage(image, rows, cols, canvas, mean, std, shiftX, shiftY);
        return canvas;
    }

    [Fact]
    public void Image_pixel_0_0_lands_at_2_2_and_the_border_is_background()
    {
        byte[] image = Traceable28();
        const float mean = 0.25f, std = 0.5f;
        float[] canvas = Write(image, 28, 28, mean, std);

        float background = (0f - mean) / std;
        for (int y = 0; y < Canvas; y++)
        {
            for (int x = 0; x < Canvas; x++)
            {
                float expected = y is >= 2 and < 30 && x is >= 2 and < 30
                    ? (image[(y - 2) * 28 + (x - 2)] / 255f - mean) / std
                    : background;
                Assert.Equal(expected, canvas[y * Canvas + x]);
            }
        }
        Assert.Equal((image[0] / 255f - mean) / std, canvas[2 * Canvas + 2]);
        Assert.Equal(-0.5f, background);
    }

    [Fact]
    public void Without_normalisation_values_are_v_over_255_and_the_border_is_zero()
    {
        byte[] image = new byte[28 * 28];
        image[0] = 255;
        image[^1] = 51;
        float[] canvas = Write(image, 28, 28);

        Assert.Equal(1f, canvas[2 * Canvas + 2]);
        Assert.Equal(0.2f, canvas[29 * Canvas + 29]);
        Assert.Equal(1f + 0.2f, canvas.Sum(), 6);
    }

    [Fact]
    public void Smaller_images_are_centred_with_pad_of_half_the_difference()
    {
        // 5 x 8: top = (32 - 5) / 2 = 13, left = (32 - 8) / 2 = 12.
        byte[] image = Enumerable.Range(1, 40).Select(i => (byte)i).ToArray();
        float[] canvas = Write(image, 5, 8);

        Assert.Equal(1 / 255f, canvas[13 * Canvas + 12]);
        Assert.Equal(40 / 255f, canvas[17 * Canvas + 19]);
        Assert.Equal(image.Sum(v => v / 255f), canvas.Sum(), 4);
    }

    [Theory]
    [InlineData(3, 0)]
    [InlineData(-2, 0)]
    [InlineData(0, 4)]
    [InlineData(-1, -3)]
    [InlineData(2, -2)]
    public void Shift_moves_every_pixel_and_drops_what_leaves_the_canvas(int shiftX, int shiftY)
    {
        byte[] image = Traceable28();
        float[] canvas = Write(image, 28, 28, shiftX: shiftX, shiftY: shiftY);

        for (int y = 0; y < Canvas; y++)
        {
            for (int x = 0; x < Canvas; x++)
            {
                int r = y - 2 - shiftY, c = x - 2 - shiftX;
                float expected = r is >= 0 and < 28 && c is >= 0 and < 28 ? image[r * 28 + c] / 255f : 0f;
                Assert.Equal(expected, canvas[y * Canvas + x]);
            }
        }
    }

    [Fact]
    public void Shift_by_3_right_drops_the_last_image_column_and_leaves_the_left_background()
    {
        byte[] image = new byte[28 * 28];
        for (int r = 0; r < 28; r++)
        {
            image[r * 28] = 100;      // first column
            image[r * 28 + 27] = 200; // last column, at x = 29 unshifted, x = 32 after the shift: gone
        }
        float[] canvas = Write(image, 28, 28, shiftX: 3);

        for (int y = 2; y < 30; y++)
        {
            Assert.Equal(100 / 255f, canvas[y * Canvas + 5]);
        }
        Assert.DoesNotContain(200 / 255f, canvas);
        Assert.All(Enumerable.Range(0, Canvas), y => Assert.Equal(0f, canvas[y * Canvas + 2]));
    }

    [Theory]
    [InlineData(32, 0)]
    [InlineData(0, -40)]
    [InlineData(int.MaxValue, 0)]
    [InlineData(0, int.MinValue)]
    public void Shift_off_the_canvas_leaves_only_background(int shiftX, int shiftY)
    {
        float[] canvas = Write(Traceable28(), 28, 28, mean: 0.5f, std: 2f, shiftX, shiftY);
        Assert.All(canvas, v => Assert.Equal(-0.25f, v));
    }

    [Fact]
    public void Every_canvas_element_is_overwritten()
    {
        var canvas = new float[MnistPreprocessing.CanvasPixels];
        canvas.AsSpan().Fill(float.NaN);
        MnistPreprocessing.WriteImage(Traceable28(), 28, 28, canvas, 0f, 1f, shiftX: 5, shiftY: -5);
        Assert.DoesNotContain(canvas, float.IsNaN);
    }

    [Fact]
    public void Bad_arguments_are_rejected()
    {
        var canvas = new float[MnistPreprocessing.CanvasPixels];
        byte[] image = new byte[28 * 28];
        Assert.Throws<ArgumentException>(() => MnistPreprocessing.WriteImage(image.AsSpan(1), 28, 28, canvas, 0f, 1f));
        Assert.Throws<ArgumentException>(() => MnistPreprocessing.WriteImage(image, 28, 28, new float[1000], 0f, 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => MnistPreprocessing.WriteImage(new byte[33 * 28], 33, 28, canvas, 0f, 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => MnistPreprocessing.WriteImage(image, 28, 28, canvas, 0f, 0f));
        Assert.Throws<ArgumentOutOfRangeException>(() => MnistPreprocessing.WriteImage(image, 28, 28, canvas, float.NaN, 1f));
    }

    [Fact]
    public void Default_mean_and_std_match_the_padded_training_images()
    {
        MnistDataset train = BundledMnist.Train;
        var canvas = new float[MnistPreprocessing.CanvasPixels];
        double sum = 0, sumOfSquares = 0;
        for (int i = 0; i < train.Count; i++)
        {
            MnistPreprocessing.WriteImage(train.GetImage(i), train.Rows, train.Cols, canvas, 0f, 1f);
            foreach (float v in canvas)
            {
                sum += v;
                sumOfSquares += (double)v * v;
            }
        }
        double n = (double)train.Count * MnistPreprocessing.CanvasPixels;
        double mean = sum / n;
        double std = Math.Sqrt(sumOfSquares / n - mean * mean);

        Assert.Equal(MnistPreprocessing.DefaultMean, mean, 1e-3);
        Assert.Equal(MnistPreprocessing.DefaultStd, std, 1e-3);
        // The constants are the measurements rounded to four decimals, not merely close.
        Assert.Equal(MnistPreprocessing.DefaultMean, Math.Round(mean, 4), 1e-6);
        Assert.Equal(MnistPreprocessing.DefaultStd, Math.Round(std, 4), 1e-6);
    }

    [Fact]
    public void Default_normalisation_gives_the_training_images_zero_mean_and_unit_std()
    {
        MnistDataset train = BundledMnist.Train.Take(2000);
        var canvas = new float[MnistPreprocessing.CanvasPixels];
        double sum = 0, sumOfSquares = 0;
        for (int i = 0; i < train.Count; i++)
        {
            MnistPreprocessing.WriteImage(train.GetImage(i), 28, 28, canvas, MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd);
            foreach (float v in canvas)
            {
                sum += v;
                sumOfSquares += (double)v * v;
            }
        }
        double n = (double)train.Count * MnistPreprocessing.CanvasPixels;
        double mean = sum / n;
        Assert.InRange(mean, -0.05, 0.05);
        Assert.InRange(Math.Sqrt(sumOfSquares / n - mean * mean), 0.95, 1.05);
    }
}
