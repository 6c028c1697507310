"""Make the digits detection/segmentation set (no download).

    python tools/make_digits.py [--out data/digits] [--seed 0]

Re-running with the same arguments reuses what exists.
"""
import argparse

from mmkd.datasets import make_digits


def main():
    parser = argparse.ArgumentParser(description='Make the digits data')
    parser.add_argument('--out', default='data/digits')
    parser.add_argument('--num-train', type=int, default=800)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    paths = make_digits(
        args.out,
        args.num_train,
        args.num_val,
        args.image_size,
        seed=args.seed)
    print(f"digits written to {paths['root']}")


if __name__ == '__main__':
    main()
