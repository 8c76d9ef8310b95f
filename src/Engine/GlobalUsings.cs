// The engine's own tensor type is the floor every folder stands on.
global using Engine.Tensors;
