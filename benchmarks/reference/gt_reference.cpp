// A re-implementation of the study's ground-truth similarity program, written from the algorithm as
// described in the satwatch design brief (section 2), for cross-checking and as the speed baseline.
// It keeps the described quirks on purpose: ceil-sized cells walked over the row-major pixel array
// (wrapping into the next row, reading zeros past the end), float32 grey and float32 binning, and a
// sort-based two-sample KS per cell pair evaluated at the union of occurring values.
//
// Build:  g++ -O2 -o gt_reference gt_reference.cpp -lpng
// Usage:  gt_reference [--any-size] [--per-image] N BINS FRAMES CHANNELS A_1 .. A_FC B_1 .. B_FC
//         (window A's FRAMES*CHANNELS image paths frame by frame, then window B's)
// Prints the window similarity with 12 decimals (and with --per-image each image pair's cell sum).

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

const int kHeight = 1500;
const int kWidth = 1300;

struct Grey {
    int height = 0;
    int width = 0;
    std::vector<float> pixels;  // row-major, height * width
};

// Reads a PNG as 8-bit RGB and converts it to grey the way the study did: double arithmetic, float storage.
bool read_grey(const char* path, Grey& out) {
    FILE* fp = std::fopen(path, "rb");
    if (!fp) {
        std::fprintf(stderr, "cannot open %s\n", path);
        return false;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        std::fprintf(stderr, "cannot decode %s\n", path);
        png_destroy_read_struct(&png, &info, nullptr);
        std::fclose(fp);
        return false;
    }
    png_init_io(png, fp);
    png_read_info(png, info);
    png_byte color = png_get_color_type(png, info);
    png_byte depth = png_get_bit_depth(png, info);
    if (depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_read_update_info(png, info);
    int w = static_cast<int>(png_get_image_width(png, info));
    int h = static_cast<int>(png_get_image_height(png, info));
    std::vector<unsigned char> rgb(static_cast<size_t>(w) * h * 3);
    std::vector<png_bytep> rows(h);
    for (int r = 0; r < h; ++r) rows[r] = rgb.data() + static_cast<size_t>(r) * w * 3;
    png_read_image(png, rows.data());
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(fp);

    out.height = h;
    out.width = w;
    out.pixels.resize(static_cast<size_t>(w) * h);
    for (size_t i = 0; i < out.pixels.size(); ++i) {
        const unsigned char* p = &rgb[i * 3];
        out.pixels[i] = static_cast<float>(0.2989 * p[0] + 0.5870 * p[1] + 0.1140 * p[2]);
    }
    return true;
}

// Bin values of cell (ci, cj): the image is one flat array, so columns past the right edge continue on the
// next row and anything past the last pixel reads 0.
void cell_bins(const Grey& g, int ci, int cj, int ch, int cw, int bins, std::vector<int>& out) {
    out.clear();
    const size_t total = static_cast<size_t>(g.height) * g.width;
    for (int r = 0; r < ch; ++r) {
        for (int c = 0; c < cw; ++c) {
            size_t idx = static_cast<size_t>(ci * ch + r) * g.width + static_cast<size_t>(cj * cw + c);
            float v = idx < total ? g.pixels[idx] : 0.0f;
            out.push_back(static_cast<int>(std::floor(v / 255.0f * static_cast<float>(bins))));
        }
    }
}

// Two-sample KS statistic: largest CDF difference over every value occurring in either sample.
double ks_statistic(std::vector<int>& a, std::vector<int>& b) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    std::vector<int> values(a);
    values.insert(values.end(), b.begin(), b.end());
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    double d = 0.0;
    for (int v : values) {
        double fa = static_cast<double>(std::upper_bound(a.begin(), a.end(), v) - a.begin()) / a.size();
        double fb = static_cast<double>(std::upper_bound(b.begin(), b.end(), v) - b.begin()) / b.size();
        d = std::max(d, std::fabs(fa - fb));
    }
    return d;
}

double image_similarity(const Grey& x, const Grey& y, int n, int bins) {
    int ch = (x.height + n - 1) / n;
    int cw = (x.width + n - 1) / n;
    std::vector<int> a, b;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
        for (int j = 0; j < n; ++j) {
            cell_bins(x, i, j, ch, cw, bins, a);
            cell_bins(y, i, j, ch, cw, bins, b);
            sum += 1.0 - ks_statistic(a, b);
        }
    }
    return sum;
}

}  // namespace

int main(int argc, char** argv) {
    bool any_size = false;
    bool per_image = false;
    int arg = 1;
    while (arg < argc && std::strncmp(argv[arg], "--", 2) == 0) {
        if (std::strcmp(argv[arg], "--any-size") == 0) any_size = true;
        else if (std::strcmp(argv[arg], "--per-image") == 0) per_image = true;
        ++arg;
    }
    if (argc - arg < 4) {
        std::fprintf(stderr, "usage: %s [--any-size] [--per-image] N BINS FRAMES CHANNELS paths...\n", argv[0]);
        return 2;
    }
    int n = std::atoi(argv[arg]);
    int bins = std::atoi(argv[arg + 1]);
    int frames = std::atoi(argv[arg + 2]);
    int channels = std::atoi(argv[arg + 3]);
    arg += 4;
    int per_window = frames * channels;
    if (argc - arg != 2 * per_window) {
        std::fprintf(stderr, "expected %d image paths, got %d\n", 2 * per_window, argc - arg);
        return 2;
    }
    double total = 0.0;
    for (int k = 0; k < per_window; ++k) {
        Grey x, y;
        const char* pa = argv[arg + k];
        const char* pb = argv[arg + per_window + k];
        if (!read_grey(pa, x) || !read_grey(pb, y)) return 1;
        for (const auto* item : {&x, &y}) {
            const char* path = item == &x ? pa : pb;
            if (!any_size && (item->height != kHeight || item->width != kWidth)) {
                std::fprintf(stderr, "%s is %dx%d, expected %dx%d\n", path, item->width, item->height, kWidth, kHeight);
                return 1;
            }
        }
        if (x.height != y.height || x.width != y.width) {
            std::fprintf(stderr, "%s and %s differ in size\n", pa, pb);
            return 1;
        }
        double s = image_similarity(x, y, n, bins);
        if (per_image) std::printf("%d %.12f\n", k, s);
        total += s;
    }
    std::printf("%.12f\n", total / (static_cast<double>(per_window) * n * n));
    return 0;
}
