from setuptools import find_packages, setup


def version():
    scope = {}
    with open('mmkd/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmkd',
    version=version(),
    description='Knowledge distillation for OpenMMLab detection and '
    'segmentation',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmkd', 'mmkd.*']),
    # torch >= 2.6 (safe checkpoint loading by default) needs Python 3.9
    python_requires='>=3.9',
    # torch and mmcv are installed first (see README): mmcv builds against
    # the installed torch, so pip must not resolve either here.
    install_requires=['mmengine>=0.10.0,<1.0'],
    extras_require=dict(
        det=['mmdet>=3.0.0,<4.0'],
        seg=['mmsegmentation>=1.0.0,<2.0'],
        tests=['pytest', 'pycocotools', 'flake8', 'isort']),
    license='Apache License 2.0',
    zip_safe=False)
