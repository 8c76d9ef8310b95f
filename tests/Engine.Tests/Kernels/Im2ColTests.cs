using Engine.Kernels;

namespace Engine.Tests.Kernels;

public class Im2ColTests
{
    public static TheoryData<int, int, int, int, int, int> Geometries() => new()
    {
        // channels, height, width, kernel, stride, padding
        { 1, 4, 4, 3, 1, 1 },
        { 3, 7, 9, 3, 1, 1 },
        { 2, 9, 7, 3, 2, 1 },
        { 1, 17, 33, 5, 3, 2 },
        { 4, 1, 1, 1, 1, 0 },
        { 2, 1, 1, 3, 1, 1 },
        { 1, 2, 3, 5, 1, 2 },
        { 5, 8, 8, 2, 2, 0 },
        { 32, 32, 32, 3, 1, 1 },
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Im2col_and_col2im_match_their_scalar_twins(int c, int h, int w, int k, int s, int p)
    {
        var g = new ConvGeometry(c, h, w, k, k, s, s, p, p);
        float[] image = TestData.Uniform(g.InputSize, 1);
        int colSize = g.ColumnRows * g.ColumnCols;
        float[] expected = TestData.Uniform(colSize, 2), actual = TestData.Uniform(colSize, 3);
        Im2ColF32.Im2ColScalar(image, g, expected);
        Im2ColF32.Im2Col(image, g, actual);
        Assert.Equal(expected, actual);

        float[] col = TestData.Uniform(colSize, 4);
        float[] back = TestData.Uniform(g.InputSize, 5), backExpected = (float[])back.Clone();
        Im2ColF32.Col2ImScalar(col, g, backExpected);
        Im2ColF32.Col2Im(col, g, back);
        for (int i = 0; i < back.Length; i++)
        {
            Assert.Equal(backExpected[i], back[i], 1e-5f);
        }
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Col2im_is_the_adjoint_of_im2col(int c, int h, int w, int k, int s, int p)
    {
        // <im2col(x), y> = <x, col2im(y)> for all x, y: the property backward relies on.
        var g = new ConvGeometry(c, h, w, k, k, s, s, p, p);
        float[] x = TestData.Uniform(g.InputSize, 6), y = TestData.Uniform(g.ColumnRows * g.ColumnCols, 7);
        float[] colX = new float[y.Length], imageY = new float[x.Length];
        Im2ColF32.Im2Col(x, g, colX);
        Im2ColF32.Col2Im(y, g, imageY);
        double left = 0, right = 0;
        for (int i = 0; i < y.Length; i++)
        {
            left += (double)colX[i] * y[i];
        }
        for (int i = 0; i < x.Length; i++)
        {
            right += (double)x[i] * imageY[i];
        }
        Assert.Equal(left, right, 1e-3);
    }
}
