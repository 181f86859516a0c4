"""The benchmark nets of configs/ written in PyTorch, layer for layer, for side-by-side runs."""
import torch
import torch.nn as nn


def lenet():
    """Caffe's LeNet as in configs/lenet_fashion_mnist.prototxt (1 x 28 x 28 -> 10)."""
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 50, 5), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def cifar_small():
    """configs/cifar_small.prototxt (3 x 32 x 32 -> 10)."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 10))


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the shortcut (a 1x1 conv + BN where the shape changes), ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


def resnet20():
    """configs/resnet20_cifar.prototxt (3 x 32 x 32 -> 10)."""
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage, ch in enumerate([16, 32, 64]):
        for block in range(3):
            layers.append(BasicBlock(cin, ch, 2 if stage > 0 and block == 0 else 1))
            cin = ch
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def resnet50():
    """configs/resnet50_photos.prototxt (3 x 224 x 224 -> 1000): torchvision's, which it copies."""
    import torchvision
    return torchvision.models.resnet50()


NETS = {"lenet": (lenet, (1, 28, 28), "configs/lenet_fashion_mnist.prototxt"),
        "cifar": (cifar_small, (3, 32, 32), "configs/cifar_small.prototxt"),
        "resnet20": (resnet20, (3, 32, 32), "configs/resnet20_cifar.prototxt"),
        "resnet50": (resnet50, (3, 224, 224), "configs/resnet50_photos.prototxt")}


def train_steps_per_second(net, shape, batch, iters, device, images=None, labels=None, autocast=None):
    """Images/s of SGD training steps (forward, backward, update) on data already in memory.
    autocast: a dtype (torch.bfloat16) for PyTorch's mixed precision, on channels-last tensors,
    its fast path on cuDNN; fp32 weights either way."""
    import contextlib
    import time
    torch.manual_seed(1)
    model = net().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    if images is None:
        images = torch.randn(batch * 8, *shape, device=device)
        labels = torch.randint(0, 10, (batch * 8,), device=device)
    if autocast is not None and images.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    steps = images.shape[0] // batch

    def step(i):
        j = (i % steps) * batch
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=autocast) if autocast is not None else contextlib.nullcontext():
            loss = loss_fn(model(images[j:j + batch]), labels[j:j + batch])
        loss.backward()
        opt.step()
        return loss

    for i in range(5):
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(iters):
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - start)
