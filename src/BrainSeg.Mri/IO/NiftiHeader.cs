using System.Buffers.Binary;
using System.Text;
using BrainSeg.Mri.Geometry;

namespace BrainSeg.Mri.IO;

/// <summary>One NIfTI header extension: its code and its content (esize - 8 bytes, as stored).</summary>
public sealed record NiftiExtension(int Code, byte[] Content);

/// <summary>
/// Every field of a NIfTI-1 or NIfTI-2 header, held at NIfTI-2 width (64-bit dims, double
/// floats), so either version round-trips without loss. The fields are those of nifti1.h / nifti2.h.
/// </summary>
public sealed class NiftiHeader
{
    public const int Nifti1Size = 348;
    public const int Nifti2Size = 540;

    /// <summary>1 or 2.</summary>
    public int Version { get; set; } = 1;
    public bool IsBigEndian { get; set; }
    /// <summary>True for a .hdr/.img pair (magic ni1/ni2), false for a single .nii (n+1/n+2).</summary>
    public bool IsPair { get; set; }

    /// <summary>dim[0] is the number of dimensions, dim[1..dim[0]] their sizes.</summary>
    public long[] Dim { get; set; } = [3, 1, 1, 1, 1, 1, 1, 1];
    public NiftiDataType DataType { get; set; } = NiftiDataType.Float32;
    public int BitPix { get; set; } = 32;
    /// <summary>pixdim[0] is qfac, pixdim[1..] the voxel sizes and time step.</summary>
    public double[] PixDim { get; set; } = [1, 1, 1, 1, 1, 1, 1, 1];
    public long VoxOffset { get; set; }
    public double SclSlope { get; set; } = 1;
    public double SclInter { get; set; }
    public double IntentP1 { get; set; }
    public double IntentP2 { get; set; }
    public double IntentP3 { get; set; }
    public int IntentCode { get; set; }
    public string IntentName { get; set; } = "";
    public long SliceStart { get; set; }
    public long SliceEnd { get; set; }
    public int SliceCode { get; set; }
    public double SliceDuration { get; set; }
    public double TOffset { get; set; }
    public int XyztUnits { get; set; }
    public double CalMax { get; set; }
    public double CalMin { get; set; }
    public int GlMax { get; set; }
    public int GlMin { get; set; }
    public byte DimInfo { get; set; }
    public string Description { get; set; } = "";
    public string AuxFile { get; set; } = "";
    public int QFormCode { get; set; }
    public int SFormCode { get; set; }
    public double QuaternB { get; set; }
    public double QuaternC { get; set; }
    public double QuaternD { get; set; }
    public double QOffsetX { get; set; }
    public double QOffsetY { get; set; }
    public double QOffsetZ { get; set; }
    public double[] SRowX { get; set; } = [1, 0, 0, 0];
    public double[] SRowY { get; set; } = [0, 1, 0, 0];
    public double[] SRowZ { get; set; } = [0, 0, 1, 0];
    public List<NiftiExtension> Extensions { get; set; } = [];

    public int HeaderSize => Version == 2 ? Nifti2Size : Nifti1Size;
    public int Rank => (int)Dim[0];

    /// <summary>The array shape, dim[1..dim[0]].</summary>
    public int[] Shape => Dim.Skip(1).Take(Rank).Select(d => checked((int)d)).ToArray();

    /// <summary>Voxel sizes (and time step) as nibabel's get_zooms: pixdim[1..dim[0]].</summary>
    public double[] Zooms => PixDim.Skip(1).Take(Rank).ToArray();

    /// <summary>
    /// Whether scl_slope/scl_inter apply: the standard says a slope of 0 means no scaling; nibabel also
    /// ignores a non-finite slope.
    /// </summary>
    public bool HasScaling => SclSlope != 0 && double.IsFinite(SclSlope);

    public NiftiHeader Clone()
    {
        var copy = (NiftiHeader)MemberwiseClone();
        copy.Dim = (long[])Dim.Clone();
        copy.PixDim = (double[])PixDim.Clone();
        copy.SRowX = (double[])SRowX.Clone();
        copy.SRowY = (double[])SRowY.Clone();
        copy.SRowZ = (double[])SRowZ.Clone();
        copy.Extensions = Extensions.Select(e => e with { Content = (byte[])e.Content.Clone() }).ToList();
        return copy;
    }

    // ---- affines, as nibabel chooses them ----

    /// <summary>The affine nibabel uses: the sform if sform_code is set, else the qform if qform_code is set, else the pixdim fallback.</summary>
    public Affine BestAffine()
    {
        if (SFormCode > 0) return SFormAffine();
        if (QFormCode > 0) return QFormAffine();
        return BaseAffine();
    }

    public Affine SFormAffine() => Affine.FromRows(SRowX, SRowY, SRowZ);

    /// <summary>The qform: rotation from the quaternion (a recovered from b, c, d), voxel sizes, qfac on the third axis, offsets.</summary>
    public Affine QFormAffine()
    {
        double b = QuaternB, c = QuaternC, d = QuaternD;
        double a2 = 1.0 - (b * b + c * c + d * d);
        // nibabel tolerates a slightly negative a² (rounding of float32 fields) and takes a = 0.
        double a = a2 < 0 ? 0 : Math.Sqrt(a2);
        double n = a * a + b * b + c * c + d * d;
        Span<double> r = stackalloc double[9];
        if (n < 1e-300)
        {
            r.Clear();
            r[0] = r[4] = r[8] = 1;
        }
        else
        {
            double s = 2.0 / n;
            double x = b * s, y = c * s, z = d * s;
            double wx = a * x, wy = a * y, wz = a * z;
            double xx = b * x, xy = b * y, xz = b * z;
            double yy = c * y, yz = c * z, zz = d * z;
            r[0] = 1 - (yy + zz); r[1] = xy - wz; r[2] = xz + wy;
            r[3] = xy + wz; r[4] = 1 - (xx + zz); r[5] = yz - wx;
            r[6] = xz - wy; r[7] = yz + wx; r[8] = 1 - (xx + yy);
        }
        double qfac = PixDim[0] == -1 ? -1 : 1;
        double sx = PixDim[1], sy = PixDim[2], sz = PixDim[3] * qfac;
        Span<double> m = [r[0] * sx, r[1] * sy, r[2] * sz, r[3] * sx, r[4] * sy, r[5] * sz, r[6] * sx, r[7] * sy, r[8] * sz];
        return Affine.FromLinear(m, QOffsetX, QOffsetY, QOffsetZ);
    }

    /// <summary>nibabel's fallback: voxel sizes on the diagonal, x flipped, the array centre at the origin.</summary>
    public Affine BaseAffine()
    {
        Span<double> size = [1, 1, 1];
        Span<double> zoom = [1, 1, 1];
        for (int i = 0; i < Math.Min(3, Rank); i++)
        {
            size[i] = Dim[i + 1];
            zoom[i] = PixDim[i + 1];
        }
        zoom[0] = -zoom[0];
        return Affine.FromRows(
            [zoom[0], 0, 0, -(size[0] - 1) / 2.0 * zoom[0]],
            [0, zoom[1], 0, -(size[1] - 1) / 2.0 * zoom[1]],
            [0, 0, zoom[2], -(size[2] - 1) / 2.0 * zoom[2]]);
    }

    /// <summary>Sets both the sform and the qform to <paramref name="affine"/> (the qform without shears), with the given codes.</summary>
    public void SetAffine(Affine affine, int sformCode = 1, int qformCode = 1)
    {
        SRowX = [affine[0, 0], affine[0, 1], affine[0, 2], affine[0, 3]];
        SRowY = [affine[1, 0], affine[1, 1], affine[1, 2], affine[1, 3]];
        SRowZ = [affine[2, 0], affine[2, 1], affine[2, 2], affine[2, 3]];
        SFormCode = sformCode;
        QFormCode = qformCode;
        var (zx, zy, zz) = affine.VoxelSizes();
        // Rotation part: normalised columns; a negative determinant goes into qfac on the third axis.
        Span<double> r = [affine[0, 0] / zx, affine[0, 1] / zy, affine[0, 2] / zz,
                          affine[1, 0] / zx, affine[1, 1] / zy, affine[1, 2] / zz,
                          affine[2, 0] / zx, affine[2, 1] / zy, affine[2, 2] / zz];
        double det = r[0] * (r[4] * r[8] - r[5] * r[7]) - r[1] * (r[3] * r[8] - r[5] * r[6]) + r[2] * (r[3] * r[7] - r[4] * r[6]);
        double qfac = 1;
        if (det < 0)
        {
            qfac = -1;
            r[2] = -r[2]; r[5] = -r[5]; r[8] = -r[8];
        }
        // Quaternion from a proper rotation matrix (Shepperd's method), sign chosen so that a >= 0.
        double a, b, c, d;
        double trace = r[0] + r[4] + r[8];
        if (trace > 0)
        {
            double s = Math.Sqrt(trace + 1) * 2;
            a = 0.25 * s; b = (r[7] - r[5]) / s; c = (r[2] - r[6]) / s; d = (r[3] - r[1]) / s;
        }
        else if (r[0] > r[4] && r[0] > r[8])
        {
            double s = Math.Sqrt(1 + r[0] - r[4] - r[8]) * 2;
            a = (r[7] - r[5]) / s; b = 0.25 * s; c = (r[1] + r[3]) / s; d = (r[2] + r[6]) / s;
        }
        else if (r[4] > r[8])
        {
            double s = Math.Sqrt(1 + r[4] - r[0] - r[8]) * 2;
            a = (r[2] - r[6]) / s; b = (r[1] + r[3]) / s; c = 0.25 * s; d = (r[5] + r[7]) / s;
        }
        else
        {
            double s = Math.Sqrt(1 + r[8] - r[0] - r[4]) * 2;
            a = (r[3] - r[1]) / s; b = (r[2] + r[6]) / s; c = (r[5] + r[7]) / s; d = 0.25 * s;
        }
        if (a < 0) { b = -b; c = -c; d = -d; }
        QuaternB = b; QuaternC = c; QuaternD = d;
        QOffsetX = affine[0, 3]; QOffsetY = affine[1, 3]; QOffsetZ = affine[2, 3];
        PixDim[0] = qfac;
        PixDim[1] = zx; PixDim[2] = zy; PixDim[3] = zz;
    }

    // ---- binary layout ----

    /// <summary>
    /// Parses a header from the first bytes of a file. Checks only what concerns the header itself
    /// (size, magic, dims, datatype); the reader checks the data against the file.
    /// Like nibabel, it repairs what is harmless: an invalid qfac becomes 1, negative voxel sizes their
    /// absolute values, unknown sform/qform codes 0.
    /// </summary>
    public static NiftiHeader Parse(ReadOnlySpan<byte> bytes, string path)
    {
        if (bytes.Length < 4)
            throw new ImageFormatException(path, $"the file holds {bytes.Length} bytes, too few for a NIfTI header (348 or 540 bytes)", "Check that the file was copied completely.");
        int le = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        int be = BinaryPrimitives.ReadInt32BigEndian(bytes);
        int version;
        bool big;
        if (le == Nifti1Size) { version = 1; big = false; }
        else if (be == Nifti1Size) { version = 1; big = true; }
        else if (le == Nifti2Size) { version = 2; big = false; }
        else if (be == Nifti2Size) { version = 2; big = true; }
        else
            throw new ImageFormatException(path, $"not a NIfTI file: the first four bytes (sizeof_hdr) read {le}, not 348 (NIfTI-1) or 540 (NIfTI-2) in either byte order",
                "Give a .nii, .nii.gz, .hdr/.img or .mgz image file.");
        int size = version == 1 ? Nifti1Size : Nifti2Size;
        if (bytes.Length < size)
            throw new ImageFormatException(path, $"truncated header: {bytes.Length} bytes where a NIfTI-{version} header needs {size}", "The file is incomplete; copy or download it again.");
        var h = new NiftiHeader { Version = version, IsBigEndian = big };
        var r = new FieldReader(bytes, big);
        if (version == 1) h.ReadNifti1(r, path); else h.ReadNifti2(r, path);
        h.CheckAndRepair(path);
        return h;
    }

    private void ReadNifti1(FieldReader r, string path)
    {
        string magic = r.Text(344, 4);
        if (magic == "n+1") IsPair = false;
        else if (magic == "ni1") IsPair = true;
        else
            throw new ImageFormatException(path, $"bad NIfTI-1 magic \"{Printable(magic)}\" (expected \"n+1\" or \"ni1\"); this may be an Analyze 7.5 file",
                "Convert it to NIfTI (e.g. with FSL's fslchfiletype or nibabel) first.");
        DimInfo = r.Byte(39);
        for (int i = 0; i < 8; i++) Dim[i] = r.Int16(40 + 2 * i);
        IntentP1 = r.Float(56); IntentP2 = r.Float(60); IntentP3 = r.Float(64);
        IntentCode = r.Int16(68);
        DataType = (NiftiDataType)r.Int16(70);
        BitPix = r.Int16(72);
        SliceStart = r.Int16(74);
        for (int i = 0; i < 8; i++) PixDim[i] = r.Float(76 + 4 * i);
        double offset = r.Float(108);
        if (!double.IsFinite(offset) || offset < 0 || offset > int.MaxValue)
            throw new ImageFormatException(path, $"vox_offset {offset} is not a valid byte offset", "The header is corrupt; re-export the image.");
        VoxOffset = (long)offset;
        SclSlope = r.Float(112); SclInter = r.Float(116);
        SliceEnd = r.Int16(120);
        SliceCode = r.Byte(122);
        XyztUnits = r.Byte(123);
        CalMax = r.Float(124); CalMin = r.Float(128);
        SliceDuration = r.Float(132); TOffset = r.Float(136);
        GlMax = r.Int32(140); GlMin = r.Int32(144);
        Description = r.Text(148, 80);
        AuxFile = r.Text(228, 24);
        QFormCode = r.Int16(252); SFormCode = r.Int16(254);
        QuaternB = r.Float(256); QuaternC = r.Float(260); QuaternD = r.Float(264);
        QOffsetX = r.Float(268); QOffsetY = r.Float(272); QOffsetZ = r.Float(276);
        for (int i = 0; i < 4; i++)
        {
            SRowX[i] = r.Float(280 + 4 * i);
            SRowY[i] = r.Float(296 + 4 * i);
            SRowZ[i] = r.Float(312 + 4 * i);
        }
        IntentName = r.Text(328, 16);
    }

    private void ReadNifti2(FieldReader r, string path)
    {
        string magic = r.Text(4, 4);
        bool tailOk = r.Span.Slice(8, 4).SequenceEqual("\r\n\u001a\n"u8);
        if (magic == "n+2" && tailOk) IsPair = false;
        else if (magic == "ni2" && tailOk) IsPair = true;
        else
            throw new ImageFormatException(path, $"bad NIfTI-2 magic \"{Printable(magic)}\" (expected \"n+2\" or \"ni2\" followed by \\r\\n\\x1a\\n)", "The header is corrupt; re-export the image.");
        DataType = (NiftiDataType)r.Int16(12);
        BitPix = r.Int16(14);
        for (int i = 0; i < 8; i++) Dim[i] = r.Int64(16 + 8 * i);
        IntentP1 = r.Double(80); IntentP2 = r.Double(88); IntentP3 = r.Double(96);
        for (int i = 0; i < 8; i++) PixDim[i] = r.Double(104 + 8 * i);
        VoxOffset = r.Int64(168);
        if (VoxOffset < 0)
            throw new ImageFormatException(path, $"vox_offset {VoxOffset} is negative", "The header is corrupt; re-export the image.");
        SclSlope = r.Double(176); SclInter = r.Double(184);
        CalMax = r.Double(192); CalMin = r.Double(200);
        SliceDuration = r.Double(208); TOffset = r.Double(216);
        SliceStart = r.Int64(224); SliceEnd = r.Int64(232);
        Description = r.Text(240, 80);
        AuxFile = r.Text(320, 24);
        QFormCode = r.Int32(344); SFormCode = r.Int32(348);
        QuaternB = r.Double(352); QuaternC = r.Double(360); QuaternD = r.Double(368);
        QOffsetX = r.Double(376); QOffsetY = r.Double(384); QOffsetZ = r.Double(392);
        for (int i = 0; i < 4; i++)
        {
            SRowX[i] = r.Double(400 + 8 * i);
            SRowY[i] = r.Double(432 + 8 * i);
            SRowZ[i] = r.Double(464 + 8 * i);
        }
        SliceCode = r.Int32(496);
        XyztUnits = r.Int32(500);
        IntentCode = r.Int32(504);
        IntentName = r.Text(508, 16);
        DimInfo = r.Byte(524);
    }

    private void CheckAndRepair(string path)
    {
        if (Dim[0] < 1 || Dim[0] > 7)
            throw new ImageFormatException(path, $"dim[0] (the number of dimensions) is {Dim[0]}; it must be 1 to 7", "The header is corrupt; re-export the image.");
        for (int i = 1; i <= Dim[0]; i++)
            if (Dim[i] < 1)
                throw new ImageFormatException(path, $"dimension {i} has size {Dim[i]}; every size must be at least 1", "The header is corrupt; re-export the image.");
        if (!DataType.IsSupported())
        {
            string what = Enum.IsDefined(DataType) ? $"datatype {DataType.NumpyName()} (code {(short)DataType})" : $"unknown datatype code {(short)DataType}";
            throw new ImageFormatException(path, $"{what} is not supported (supported: uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64)",
                "Convert the image to a real-valued scalar type (e.g. float32) first.");
        }
        BitPix = DataType.BytesPerVoxel() * 8;
        if (PixDim[0] is not (1 or -1)) PixDim[0] = 1;
        for (int i = 1; i <= 3; i++) PixDim[i] = Math.Abs(PixDim[i]);
        if (QFormCode is < 0 or > 5) QFormCode = 0;
        if (SFormCode is < 0 or > 5) SFormCode = 0;
        if (HasScaling && !double.IsFinite(SclInter))
            throw new ImageFormatException(path, $"scl_slope is {SclSlope} but scl_inter is {SclInter}", "The scaling fields are corrupt; re-export the image.");
    }

    /// <summary>The header bytes (348 or 540), in this header's byte order, with the given magic.</summary>
    public byte[] Serialize()
    {
        var bytes = new byte[HeaderSize];
        var w = new FieldWriter(bytes, IsBigEndian);
        if (Version == 1)
        {
            w.Int32(0, Nifti1Size);
            w.Byte(38, (byte)'r');
            w.Byte(39, DimInfo);
            for (int i = 0; i < 8; i++) w.Int16(40 + 2 * i, checked((short)Dim[i]));
            w.Float(56, IntentP1); w.Float(60, IntentP2); w.Float(64, IntentP3);
            w.Int16(68, checked((short)IntentCode));
            w.Int16(70, (short)DataType);
            w.Int16(72, checked((short)BitPix));
            w.Int16(74, checked((short)SliceStart));
            for (int i = 0; i < 8; i++) w.Float(76 + 4 * i, PixDim[i]);
            w.Float(108, VoxOffset);
            w.Float(112, SclSlope); w.Float(116, SclInter);
            w.Int16(120, checked((short)SliceEnd));
            w.Byte(122, checked((byte)SliceCode));
            w.Byte(123, checked((byte)XyztUnits));
            w.Float(124, CalMax); w.Float(128, CalMin);
            w.Float(132, SliceDuration); w.Float(136, TOffset);
            w.Int32(140, GlMax); w.Int32(144, GlMin);
            w.Text(148, 80, Description);
            w.Text(228, 24, AuxFile);
            w.Int16(252, checked((short)QFormCode)); w.Int16(254, checked((short)SFormCode));
            w.Float(256, QuaternB); w.Float(260, QuaternC); w.Float(264, QuaternD);
            w.Float(268, QOffsetX); w.Float(272, QOffsetY); w.Float(276, QOffsetZ);
            for (int i = 0; i < 4; i++)
            {
                w.Float(280 + 4 * i, SRowX[i]);
                w.Float(296 + 4 * i, SRowY[i]);
                w.Float(312 + 4 * i, SRowZ[i]);
            }
            w.Text(328, 16, IntentName);
            w.Text(344, 4, IsPair ? "ni1" : "n+1");
        }
        else
        {
            w.Int32(0, Nifti2Size);
            w.Text(4, 4, IsPair ? "ni2" : "n+2");
            "\r\n\u001a\n"u8.CopyTo(bytes.AsSpan(8));
            w.Int16(12, (short)DataType);
            w.Int16(14, checked((short)BitPix));
            for (int i = 0; i < 8; i++) w.Int64(16 + 8 * i, Dim[i]);
            w.Double(80, IntentP1); w.Double(88, IntentP2); w.Double(96, IntentP3);
            for (int i = 0; i < 8; i++) w.Double(104 + 8 * i, PixDim[i]);
            w.Int64(168, VoxOffset);
            w.Double(176, SclSlope); w.Double(184, SclInter);
            w.Double(192, CalMax); w.Double(200, CalMin);
            w.Double(208, SliceDuration); w.Double(216, TOffset);
            w.Int64(224, SliceStart); w.Int64(232, SliceEnd);
            w.Text(240, 80, Description);
            w.Text(320, 24, AuxFile);
            w.Int32(344, QFormCode); w.Int32(348, SFormCode);
            w.Double(352, QuaternB); w.Double(360, QuaternC); w.Double(368, QuaternD);
            w.Double(376, QOffsetX); w.Double(384, QOffsetY); w.Double(392, QOffsetZ);
            for (int i = 0; i < 4; i++)
            {
                w.Double(400 + 8 * i, SRowX[i]);
                w.Double(432 + 8 * i, SRowY[i]);
                w.Double(464 + 8 * i, SRowZ[i]);
            }
            w.Int32(496, SliceCode);
            w.Int32(500, XyztUnits);
            w.Int32(504, IntentCode);
            w.Text(508, 16, IntentName);
            w.Byte(524, DimInfo);
        }
        return bytes;
    }

    private static string Printable(string s) => new(s.Select(c => c is >= ' ' and < (char)127 ? c : '?').ToArray());

    private readonly ref struct FieldReader(ReadOnlySpan<byte> span, bool bigEndian)
    {
        public ReadOnlySpan<byte> Span { get; } = span;
        public byte Byte(int o) => Span[o];
        public short Int16(int o) => bigEndian ? BinaryPrimitives.ReadInt16BigEndian(Span[o..]) : BinaryPrimitives.ReadInt16LittleEndian(Span[o..]);
        public int Int32(int o) => bigEndian ? BinaryPrimitives.ReadInt32BigEndian(Span[o..]) : BinaryPrimitives.ReadInt32LittleEndian(Span[o..]);
        public long Int64(int o) => bigEndian ? BinaryPrimitives.ReadInt64BigEndian(Span[o..]) : BinaryPrimitives.ReadInt64LittleEndian(Span[o..]);
        public double Float(int o) => bigEndian ? BinaryPrimitives.ReadSingleBigEndian(Span[o..]) : BinaryPrimitives.ReadSingleLittleEndian(Span[o..]);
        public double Double(int o) => bigEndian ? BinaryPrimitives.ReadDoubleBigEndian(Span[o..]) : BinaryPrimitives.ReadDoubleLittleEndian(Span[o..]);

        public string Text(int o, int length)
        {
            var field = Span.Slice(o, length);
            int end = field.IndexOf((byte)0);
            return Encoding.Latin1.GetString(end < 0 ? field : field[..end]);
        }
    }

    private readonly ref struct FieldWriter(Span<byte> span, bool bigEndian)
    {
        private readonly Span<byte> _span = span;
        public void Byte(int o, byte v) => _span[o] = v;
        public void Int16(int o, short v) { if (bigEndian) BinaryPrimitives.WriteInt16BigEndian(_span[o..], v); else BinaryPrimitives.WriteInt16LittleEndian(_span[o..], v); }
        public void Int32(int o, int v) { if (bigEndian) BinaryPrimitives.WriteInt32BigEndian(_span[o..], v); else BinaryPrimitives.WriteInt32LittleEndian(_span[o..], v); }
        public void Int64(int o, long v) { if (bigEndian) BinaryPrimitives.WriteInt64BigEndian(_span[o..], v); else BinaryPrimitives.WriteInt64LittleEndian(_span[o..], v); }
        public void Float(int o, double v) { if (bigEndian) BinaryPrimitives.WriteSingleBigEndian(_span[o..], (float)v); else BinaryPrimitives.WriteSingleLittleEndian(_span[o..], (float)v); }
        public void Double(int o, double v) { if (bigEndian) BinaryPrimitives.WriteDoubleBigEndian(_span[o..], v); else BinaryPrimitives.WriteDoubleLittleEndian(_span[o..], v); }

        public void Text(int o, int length, string s)
        {
            var field = _span.Slice(o, length);
            field.Clear();
            int n = Math.Min(length, s.Length);
            Encoding.Latin1.GetBytes(s.AsSpan(0, n), field);
        }
    }
}
