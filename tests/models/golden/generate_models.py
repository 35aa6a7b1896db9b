#!/usr/bin/python3
"""Writes the model-zoo fixtures: every model's state-dict keys, shapes and parameter count,
and two reference forward passes (CIFAR resnet20 with stored random weights, ImageNet
resnet18 with closed-form weights). Run with Debian's interpreter: /usr/bin/python3.

The MNIST and CIFAR models are written out here as the original DeepShift project defines
them (its mnist.py and cifar10_models/); the ImageNet models come from torchvision.
"""
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------- MNIST

class LinearMNIST(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 512)
        self.dropout1 = nn.Dropout(0.2)
        self.fc2 = nn.Linear(512, 512)
        self.dropout2 = nn.Dropout(0.2)
        self.fc3 = nn.Linear(512, 10)

    def forward(self, x):
        x = self.dropout1(F.relu(self.fc1(x.flatten(1))))
        x = self.dropout2(F.relu(self.fc2(x)))
        return F.log_softmax(self.fc3(x), dim=1)


class ConvMNIST(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, 1)
        self.conv2 = nn.Conv2d(20, 50, 5, 1)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return F.log_softmax(self.fc2(x), dim=1)


# ---------------------------------------------------------------------------- CIFAR ResNets

class ShortcutA(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.planes = planes

    def forward(self, x):
        pad = self.planes // 4
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))


def conv_bn_shortcut(in_planes, out_planes, stride):
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
                         nn.BatchNorm2d(out_planes))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride, option):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = (ShortcutA(planes) if option == 'A'
                             else conv_bn_shortcut(in_planes, planes, stride))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride, option):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != 4 * planes:
            self.shortcut = conv_bn_shortcut(in_planes, 4 * planes, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """Option 'A': He et al.'s 16-32-64 ResNets with zero-padding shortcuts and kaiming-normal
    weights (akamaster). Option 'B': the ImageNet widths with a 3x3 stem (kuangliu)."""

    def __init__(self, block, num_blocks, num_classes, option):
        super().__init__()
        widths = [16, 32, 64] if option == 'A' else [64, 128, 256, 512]
        self.option = option
        self.in_planes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        for i, (width, blocks) in enumerate(zip(widths, num_blocks)):
            setattr(self, 'layer%d' % (i + 1),
                    self._make_layer(block, width, blocks, 1 if i == 0 else 2))
        self.linear = nn.Linear(widths[-1] * block.expansion, num_classes)
        if option == 'A':
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Conv2d)):
                    nn.init.kaiming_normal_(m.weight)

    def _make_layer(self, block, planes, blocks, stride):
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(block(self.in_planes, planes, s, self.option))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        if self.option == 'A':
            out = F.avg_pool2d(out, out.size(3))
        else:
            out = F.avg_pool2d(self.layer4(out), 4)
        return self.linear(out.flatten(1))


# ---------------------------------------------------------------------------- CIFAR MobileNetV2

class InvertedBlock(nn.Module):
    def __init__(self, in_planes, out_planes, expansion, stride):
        super().__init__()
        self.stride = stride
        planes = expansion * in_planes
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride == 1 and in_planes != out_planes:
            self.shortcut = conv_bn_shortcut(in_planes, out_planes, 1)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class CifarMobileNetV2(nn.Module):
    # (expansion, out_planes, blocks, stride); strides of the stem and of stage 2 are 1 for CIFAR
    CFG = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        layers, in_planes = [], 32
        for expansion, out_planes, blocks, stride in self.CFG:
            for s in [stride] + [1] * (blocks - 1):
                layers.append(InvertedBlock(in_planes, out_planes, expansion, s))
                in_planes = out_planes
        self.layers = nn.Sequential(*layers)
        self.conv2 = nn.Conv2d(320, 1280, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.linear = nn.Linear(1280, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(self.layers(out))))
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


# ---------------------------------------------------------------------------- CIFAR VGG

CIFAR_VGG = {
    11: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512],
    13: [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512],
    16: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512],
    19: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M',
         512, 512, 512, 512],
}


class CifarVGG(nn.Module):
    def __init__(self, depth, num_classes):
        super().__init__()
        layers, in_channels = [], 3
        for v in CIFAR_VGG[depth]:
            if v == 'M':
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_channels, v, 3, padding=1, bias=False),
                           nn.BatchNorm2d(v), nn.ReLU()]
                in_channels = v
        self.feature = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.classifier(F.avg_pool2d(self.feature(x), 2).flatten(1))


# ---------------------------------------------------------------------------- the zoo

def cifar_models(num_classes):
    def resnet(block, blocks, option):
        return lambda: CifarResNet(block, blocks, num_classes, option)
    zoo = {'resnet%d' % (6 * n + 2): resnet(BasicBlock, [n] * 3, 'A') for n in (3, 5, 7, 9, 18)}
    zoo['resnet18'] = resnet(BasicBlock, [2, 2, 2, 2], 'B')
    zoo['resnet34'] = resnet(BasicBlock, [3, 4, 6, 3], 'B')
    zoo['resnet50'] = resnet(Bottleneck, [3, 4, 6, 3], 'B')
    zoo['mobilenetv2'] = lambda: CifarMobileNetV2(num_classes)
    for depth in CIFAR_VGG:
        zoo['vgg%d' % depth] = (lambda d: lambda: CifarVGG(d, num_classes))(depth)
    return zoo


IMAGENET = ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152',
            'vgg11', 'vgg13', 'vgg16', 'vgg19', 'vgg11_bn', 'vgg13_bn', 'vgg16_bn', 'vgg19_bn',
            'alexnet', 'googlenet', 'densenet121', 'mobilenet_v2']


def imagenet_model(arch):
    # Imported here, so that tools/compare_with_pytorch.py can take the CIFAR models from this
    # file on a machine without torchvision.
    import torchvision

    kwargs = {'aux_logits': False, 'init_weights': False} if arch == 'googlenet' else {}
    return getattr(torchvision.models, arch)(weights=None, **kwargs)


def all_models():
    yield 'mnist', 'linear', 10, LinearMNIST
    yield 'mnist', 'conv', 10, ConvMNIST
    for dataset, classes in (('cifar10', 10), ('cifar100', 100)):
        for arch, build in cifar_models(classes).items():
            yield dataset, arch, classes, build
    for arch in IMAGENET:
        yield 'imagenet', arch, 1000, (lambda a: lambda: imagenet_model(a))(arch)


def write_key_lists():
    lines = ['# model <dataset> <arch> <num_classes> <parameter count>, then the state dict in',
             '# order: <key> <shape> (dims joined by x; "-" for a 0-d tensor)']
    for dataset, arch, classes, build in all_models():
        model = build()
        params = sum(p.numel() for p in model.parameters())
        lines.append('model %s %s %d %d' % (dataset, arch, classes, params))
        for key, value in model.state_dict().items():
            lines.append('%s %s' % (key, 'x'.join(map(str, value.shape)) or '-'))
        print('%-9s %-12s %11d parameters' % (dataset, arch, params))
    with open(os.path.join(HERE, 'model_keys.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


# ---------------------------------------------------------------------------- logits fixtures

def write_fixture(name, tensors):
    """<name>.f32: the tensors' float32 values back to back (little endian);
    <name>.txt: one line per tensor: <key> <shape> <offset in floats>."""
    offset, index = 0, []
    with open(os.path.join(HERE, name + '.f32'), 'wb') as raw:
        for key, value in tensors:
            flat = value.detach().to(torch.float32).contiguous().flatten().tolist()
            raw.write(struct.pack('<%df' % len(flat), *flat))
            index.append('%s %s %d' % (key, 'x'.join(map(str, value.shape)) or '-', offset))
            offset += len(flat)
    with open(os.path.join(HERE, name + '.txt'), 'w') as f:
        f.write('\n'.join(index) + '\n')


def resnet20_fixture():
    """Random weights and BN statistics (so that eval mode is not the identity), the logits of
    a 2-image batch in eval mode and in training mode (batch statistics)."""
    torch.manual_seed(20)
    model = cifar_models(10)['resnet20']()
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if key.endswith('running_mean') or key.endswith('bias'):
                value.copy_(0.1 * torch.randn(value.shape))
            elif key.endswith('running_var') or (key.startswith('bn') or '.bn' in key):
                value.copy_(0.5 + torch.rand(value.shape))
    # Cloned: the training-mode pass below updates the running statistics in place.
    state = [(k, v.clone()) for k, v in model.state_dict().items()
             if not k.endswith('num_batches_tracked')]
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    eval_logits = model(x)
    model.train()
    train_logits = model(x)
    write_fixture('resnet20_cifar10', state + [('input', x), ('logits_eval', eval_logits),
                                               ('logits_train', train_logits)])


MASK32 = 0xFFFFFFFF


def fnv1a(text):
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & MASK32
    return h


def closed_form(name, shape):
    """Deterministic values that C++ reproduces bit for bit (tests/models/fixtures.cpp):
    u_i = ((fnv1a(name) + i * 2654435761) mod 2^32) / 2^32, then by kind: the input 2u - 1;
    weights of 2+ dims (2u - 1) * sqrt(6 / fan_in); BN weights and running variances 0.5 + u;
    biases and running means 0.2 * (u - 0.5). All in double, rounded once to float32."""
    h, count = fnv1a(name), 1
    for d in shape:
        count *= d
    u = [((h + i * 2654435761) & MASK32) / 4294967296.0 for i in range(count)]
    if name == 'input':
        values = [2.0 * v - 1.0 for v in u]
    elif len(shape) > 1:
        scale = math.sqrt(6.0 / (count // shape[0]))
        values = [(2.0 * v - 1.0) * scale for v in u]
    elif name.endswith('running_var') or name.endswith('weight'):
        values = [0.5 + v for v in u]
    else:  # biases and running means
        values = [0.2 * (v - 0.5) for v in u]
    return torch.tensor(values, dtype=torch.float64).to(torch.float32).reshape(shape)


def resnet18_fixture():
    model = imagenet_model('resnet18')
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not key.endswith('num_batches_tracked'):
                value.copy_(closed_form(key, list(value.shape)))
    model.eval()
    x = closed_form('input', [2, 3, 64, 64])
    write_fixture('resnet18_imagenet', [('logits_eval', model(x))])


if __name__ == '__main__':
    torch.set_num_threads(2)
    write_key_lists()
    resnet20_fixture()
    resnet18_fixture()
