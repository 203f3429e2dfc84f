// A thin driver around the study's own ground-truth program (../shared/data/study/reference), used by
// satwatch's tests and benchmark to compare against it. Nothing of the study's code is copied or changed:
// main.cpp (which includes Image.cpp and Similarity.cpp) is included as it is, with its main() renamed,
// and this file only prints its results with full precision (the study's main prints cout's default 6
// significant digits).
//
// Build: g++ -O2 -I <study reference dir> -o driver study_driver.cpp
// Usage:
//   driver window DIR_A DIR_B N B [FRAMES]   get_video_sim over image_1..image_FRAMES (default 20), as main()
//   driver image FILE_A FILE_B N B           get_image_sim: sum over cells of 1 - D (1500x1300 only, else -1)
//   driver anysize FILE_A FILE_B N B         Similarity::compute_similarity without main.cpp's size check
// Each prints one number with 17 significant digits; -1 means the study's program refused the input.

#define main study_main
#include "main.cpp"
#undef main

#include <iomanip>
#include <string>

int main(int argc, char **argv)
{
    if (argc < 6) {
        cerr << "usage: driver window|image|anysize A B N B [FRAMES]" << endl;
        return 2;
    }
    string what = argv[1];
    string a = argv[2], b = argv[3];
    int N = stoi(argv[4]);
    int B = stoi(argv[5]);
    double sim;
    if (what == "window") {
        int frames = argc > 6 ? stoi(argv[6]) : 20;
        sim = get_video_sim(a, b, frames, N, B);
    } else if (what == "image") {
        sim = get_image_sim(a, b, N, B);
    } else if (what == "anysize") {
        Image image_a(a);
        Image image_b(b);
        Similarity similarity(N, B);
        sim = similarity.compute_similarity(image_a, image_b);
        delete [] image_a.rgb;
        delete [] image_b.rgb;
    } else {
        cerr << "unknown mode " << what << endl;
        return 2;
    }
    cout << setprecision(17) << sim << endl;
    return 0;
}
